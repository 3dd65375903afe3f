"""`POST /api/v1/session` and `DELETE /api/v1/session`: the browser's token cookie.

`EventSource` cannot send an Authorization header. A page calls `POST /api/v1/session` once
with its Bearer token; the answer sets the token as an HttpOnly cookie, which the browser then
sends with its SSE requests (and the SSE routes alone read it; API.md, "Auth").
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.responses import Response

from service.edge import api_errors as errors
from service.edge import auth
from service.edge.runtime import runtime

if TYPE_CHECKING:
    from starlette.requests import Request

PATH = "/api/v1"  # the cookie goes only to the API


async def create_session(request: Request) -> Response:
    rt = runtime(request)
    # The header only (not browser=True): a cookie never renews itself.
    principal = auth.authenticate(request, rt.verifier, "jobs:read")
    token = auth.bearer_token(request)
    assert token is not None
    max_age = math.floor((principal.expires_at - datetime.now(UTC)).total_seconds())
    if max_age <= 0:  # expires within the second
        raise errors.Unauthorized("The token has expired.")
    response = Response(status_code=204)
    response.set_cookie(
        auth.COOKIE_NAME,
        token,
        max_age=max_age,
        path=PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


async def delete_session(request: Request) -> Response:
    auth.authenticate(request, runtime(request).verifier, "jobs:read")  # every /api/v1 route
    response = Response(status_code=204)
    response.delete_cookie(
        auth.COOKIE_NAME,
        path=PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response
