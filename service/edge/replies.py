"""What the route modules answer with, written once: the JSON media type, a job's document as
a command left it, and a page of already-rendered items."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from projections import documents, jobs_view
from service.edge import api_errors as errors

if TYPE_CHECKING:
    import uuid

    from service.edge.runtime import Runtime
    from service.store.writer import Committed

JSON = "application/json"
_NONE: Mapping[str, str] = MappingProxyType({})


class Json(Response):
    """A JSON answer from an already-rendered document: its headers built directly (what
    Starlette's generic `Response` works out per call, for any media type and charset)."""

    media_type = JSON

    def __init__(
        self, content: str | bytes, status_code: int = 200, headers: Mapping[str, str] = _NONE
    ) -> None:
        body = content.encode() if isinstance(content, str) else content
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            *((name.lower().encode("latin-1"), value.encode("latin-1"))
              for name, value in headers.items()),
        ]  # fmt: skip


async def document(rt: Runtime, committed: Committed[Any], job_id: uuid.UUID) -> str:
    """The job as the command left it; from the read model when the command changed nothing."""
    document = committed.documents.get(job_id)
    if document is not None:
        return document
    async with rt.reads.connection() as conn:
        row = await jobs_view.get(conn, str(job_id), None)
    if row is None:
        raise errors.NotFound()
    return row.document


def page_response(items: list[str], tail: Mapping[str, Any]) -> Response:
    return Json(f'{{"items":[{",".join(items)}],{documents.dumps(tail)[1:]}')
