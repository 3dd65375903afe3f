"""`authenticate()`: where the token comes from, scopes, and tokens remembered once verified."""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING

import pytest
from starlette.requests import Request

from service.edge import api_errors as errors
from service.edge import auth
from tests.service.edge.verifiers import SECRET, make_verifier
from tests.support import wait_for

if TYPE_CHECKING:
    from pathlib import Path


def _request(
    authorization: str | None = None, *, cookie: str | None = None, query: str | None = None
) -> Request:
    headers = []
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    if cookie is not None:
        headers.append((b"cookie", f"{auth.COOKIE_NAME}={cookie}".encode()))
    query_string = f"{auth.QUERY_PARAMETER}={query}".encode() if query is not None else b""
    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers}
    return Request({**scope, "query_string": query_string})


# authenticate(): where the token comes from


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_header_authenticates(tmp_path: Path, scheme: str) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)
    request = _request(f"{scheme} {verifier.issue('alice', ['jobs:read'], 60)}")

    principal = auth.authenticate(request, verifier, "jobs:read")

    assert principal.sub == "alice"


def test_no_header_means_no_bearer_token() -> None:
    assert auth.bearer_token(_request()) is None


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Basic YWxpY2U6cHc=", id="basic"),
        pytest.param("Bearer", id="no-token"),
        pytest.param("Bearer ", id="blank-token"),
        pytest.param("Bearer a b", id="two-tokens"),
        pytest.param("Token abc", id="other-scheme"),
        pytest.param("", id="empty"),
    ],
)
def test_malformed_authorization_header_is_unauthorized(tmp_path: Path, header: str) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)

    with pytest.raises(errors.Unauthorized, match="Bearer <token>") as caught:
        auth.authenticate(_request(header), verifier, "jobs:read")

    assert caught.value.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("browser", [pytest.param(False, id="api"), pytest.param(True, id="sse")])
def test_missing_token_is_unauthorized(tmp_path: Path, browser: bool) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)

    with pytest.raises(errors.Unauthorized) as caught:
        auth.authenticate(_request(), verifier, "jobs:read", browser=browser)

    assert caught.value.headers == {"WWW-Authenticate": "Bearer"}


@pytest.mark.parametrize("source", ["cookie", "query"])
@pytest.mark.parametrize(
    "browser", [pytest.param(True, id="browser"), pytest.param(False, id="not-browser")]
)
def test_cookie_and_query_tokens_count_only_for_browser_routes(
    tmp_path: Path, source: str, browser: bool
) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)
    request = _request(**{source: verifier.issue("alice", ["jobs:read"], 60)})

    if browser:
        assert auth.authenticate(request, verifier, "jobs:read", browser=True).sub == "alice"
    else:
        with pytest.raises(errors.Unauthorized):
            auth.authenticate(request, verifier, "jobs:read")


@pytest.mark.parametrize(
    ("header", "cookie", "query", "expected"),
    [
        pytest.param("alice", "bob", "carol", "alice", id="header-beats-cookie-and-query"),
        pytest.param(None, "bob", "carol", "bob", id="cookie-beats-query"),
        pytest.param(None, None, "carol", "carol", id="query-last"),
    ],
)
def test_header_wins_then_cookie_then_query(
    tmp_path: Path, header: str | None, cookie: str | None, query: str | None, expected: str
) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)

    def token(sub: str | None) -> str | None:
        return None if sub is None else verifier.issue(sub, ["jobs:read"], 60)

    request = _request(
        None if header is None else f"Bearer {token(header)}",
        cookie=token(cookie),
        query=token(query),
    )

    assert auth.authenticate(request, verifier, "jobs:read", browser=True).sub == expected


def test_invalid_header_token_does_not_fall_back_to_cookie(tmp_path: Path) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)
    request = _request("Bearer not-a-jwt", cookie=verifier.issue("alice", ["jobs:read"], 60))

    with pytest.raises(errors.Unauthorized, match="not valid"):
        auth.authenticate(request, verifier, "jobs:read", browser=True)


def test_missing_scope_is_forbidden(tmp_path: Path) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)
    request = _request(f"Bearer {verifier.issue('alice', ['jobs:read'], 60)}")

    with pytest.raises(errors.Forbidden, match="'worker'") as caught:
        auth.authenticate(request, verifier, "worker")

    assert caught.value.status == 403


@pytest.mark.parametrize("scope", auth.SCOPES)
def test_admin_passes_every_scope_check(tmp_path: Path, scope: str) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)
    request = _request(f"Bearer {verifier.issue('root', ['admin'], 60)}")

    assert auth.authenticate(request, verifier, scope).owner_filter is None


def test_unknown_scope_is_a_programming_error(tmp_path: Path) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)
    request = _request(f"Bearer {verifier.issue('alice')}")

    with pytest.raises(ValueError, match="jobs:delete"):
        auth.authenticate(request, verifier, "jobs:delete")


def test_a_verified_token_is_refused_once_it_expires(tmp_path: Path) -> None:
    verifier = make_verifier(tmp_path)
    token = verifier.issue("alice", ["jobs:read"], ttl_seconds=1)
    assert verifier.verify(token).sub == "alice"
    assert verifier.verify(token).sub == "alice"  # remembered: not checked again

    def refused() -> bool:
        try:
            verifier.verify(token)
        except errors.Unauthorized:
            return True
        return False

    wait_for(refused, timeout=5)


def test_a_remembered_token_does_not_vouch_for_a_tampered_copy(tmp_path: Path) -> None:
    verifier = make_verifier(tmp_path)
    token = verifier.issue("alice", ["jobs:read"], 600)
    verifier.verify(token)
    header, _, signature = token.split(".")
    forged_claims = {"sub": "alice", "scope": "admin", "exp": int(time.time()) + 600}
    forged_body = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=")
    with pytest.raises(errors.Unauthorized):
        verifier.verify(f"{header}.{forged_body.decode()}.{signature}")
