"""`/api/v1/session`: the browser's session, an HttpOnly cookie holding its token.

A page calls `POST /api/v1/session` once with its Bearer token; the answer sets the token as an
HttpOnly cookie, which the browser then sends with every API request (every `/api/v1` route
reads it when there is no Authorization header; API.md, "Auth"), so that no script of the page
ever needs to keep the token. `GET` says who is signed in; `DELETE` signs out.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.responses import Response

from projections import documents
from service.edge import api_errors as errors
from service.edge import auth, replies
from service.edge.runtime import runtime

if TYPE_CHECKING:
    from starlette.requests import Request

PATH = "/api/v1"  # the cookie goes only to the API
_PRIVATE = {"Cache-Control": "no-store"}  # who is signed in: for this browser only


async def create_session(request: Request) -> Response:
    rt = runtime(request)
    # The header only: a cookie never renews itself.
    principal = auth.authenticate(request, rt.verifier, "jobs:read", cookie=False)
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


async def get_session(request: Request) -> Response:
    principal = auth.authenticate(request, runtime(request).verifier, "jobs:read")
    body = {
        "sub": principal.sub,
        "scopes": [scope for scope in auth.SCOPES if scope in principal.scopes],
        "expires_at": documents.format_time(principal.expires_at),
    }
    return Response(documents.dumps(body), media_type=replies.JSON, headers=_PRIVATE)


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
