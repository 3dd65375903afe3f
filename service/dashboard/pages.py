"""The dashboard's routes: the page at `/` and `/jobs/{id}`, its files at `/static/{name}`.

The files are read once, when the routes are built, from the package (a wheel carries them:
pyproject's package-data); a request can name only a file of that set, never a path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
from typing import TYPE_CHECKING

from starlette.responses import Response

from service.edge import api_errors as errors
from service.edge.params import path_job_id

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.requests import Request

# Nothing external, nothing inline: scripts and styles come from these files only, the page
# talks only to this server, and no other site may frame it.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the sign-in URL carries a token
    "Cache-Control": "no-cache",  # revalidate (ETag): a new release shows at once
}
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
INDEX = "index.html"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Asset:
    body: bytes
    media_type: str
    etag: str

    def response(self, request: Request) -> Response:
        headers = {**_HEADERS, "ETag": self.etag}
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


class Dashboard:
    """The route handlers, over the files of static/ held in memory (a few dozen KiB)."""

    def __init__(self, assets: Mapping[str, Asset]) -> None:
        self._assets = dict(assets)

    @classmethod
    def load(cls) -> Dashboard:
        folder = importlib.resources.files(__package__ or "service.dashboard") / "static"
        assets = {}
        for entry in folder.iterdir():
            media_type = _MEDIA_TYPES.get("." + entry.name.rpartition(".")[2])
            if media_type is None or not entry.is_file():
                continue
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            assets[entry.name] = Asset(body=body, media_type=media_type, etag=etag)
        if INDEX not in assets:
            raise RuntimeError(f"the dashboard's {INDEX} is missing from {folder}")
        return cls(assets)

    async def index(self, request: Request) -> Response:
        return self._assets[INDEX].response(request)

    async def job_page(self, request: Request) -> Response:
        path_job_id(request)  # a malformed id is a 404, as on the API; the page asks for the rest
        return self._assets[INDEX].response(request)

    async def asset(self, request: Request) -> Response:
        asset = self._assets.get(request.path_params["name"])
        if asset is None or request.path_params["name"] == INDEX:
            raise errors.NotFound("No such file.")
        return asset.response(request)
