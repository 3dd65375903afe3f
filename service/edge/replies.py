"""What the route modules answer with, written once: the JSON media type, a job's document as
a command left it, and a page of already-rendered items."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from projections import documents, jobs_view
from service.edge import api_errors as errors

if TYPE_CHECKING:
    import uuid
    from collections.abc import Mapping

    from service.edge.runtime import Runtime
    from service.store.writer import Committed

JSON = "application/json"


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
    return Response(f'{{"items":[{",".join(items)}],{documents.dumps(tail)[1:]}', media_type=JSON)
