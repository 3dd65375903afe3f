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
    authorization: str | None = None,
    *,
    cookie: str | None = None,
    query: str | None = None,
    method: str = "GET",
    scheme: str = "http",
    more: dict[str, str] | None = None,
) -> Request:
    headers = [(b"host", b"jobs.example:8000")]
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    if cookie is not None:
        headers.append((b"cookie", f"{auth.COOKIE_NAME}={cookie}".encode()))
    headers += [(name.lower().encode(), value.encode()) for name, value in (more or {}).items()]
    query_string = f"{auth.QUERY_PARAMETER}={query}".encode() if query is not None else b""
    scope = {"type": "http", "method": method, "scheme": scheme, "path": "/", "headers": headers}
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


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("alice", "bob", id="two-valid"),
        pytest.param("alice", None, id="valid-then-garbage"),
        pytest.param(None, "alice", id="garbage-then-valid"),
        pytest.param("alice", "alice", id="the-same-twice"),
    ],
)
def test_two_authorization_headers_are_unauthorized(
    tmp_path: Path, first: str | None, second: str | None
) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)

    def header(sub: str | None) -> str:
        return f"Bearer {verifier.issue(sub, ['jobs:read'], 60) if sub else 'x.y.z'}"

    request = _request(header(first), more={"Authorization": header(second)})

    with pytest.raises(errors.Unauthorized, match="Bearer <token>"):
        auth.authenticate(request, verifier, "jobs:read")


@pytest.mark.parametrize(
    "split", [pytest.param(False, id="one-header"), pytest.param(True, id="two-headers")]
)
def test_the_session_cookie_sent_twice_is_unauthorized(tmp_path: Path, split: bool) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)
    other = f"{auth.COOKIE_NAME}={verifier.issue('mallory', ['jobs:read'], 60)}"
    mine = verifier.issue("alice", ["jobs:read"], 60)
    if split:
        request = _request(cookie=mine, more={"Cookie": other})
    else:
        request = _request(more={"Cookie": f"theme=dark; {other}; {auth.COOKIE_NAME}={mine}"})

    with pytest.raises(errors.Unauthorized, match="sent more than once"):
        auth.authenticate(request, verifier, "jobs:read")


def test_other_cookies_beside_the_session_cookie_are_fine(tmp_path: Path) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)
    mine = verifier.issue("alice", ["jobs:read"], 60)
    cookies = f"{auth.COOKIE_NAME}x=1; x{auth.COOKIE_NAME}=2; {auth.COOKIE_NAME}={mine}; a=b"
    request = _request(more={"Cookie": cookies})

    assert auth.authenticate(request, verifier, "jobs:read").sub == "alice"


@pytest.mark.parametrize("browser", [pytest.param(False, id="api"), pytest.param(True, id="sse")])
def test_missing_token_is_unauthorized(tmp_path: Path, browser: bool) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)

    with pytest.raises(errors.Unauthorized) as caught:
        auth.authenticate(_request(), verifier, "jobs:read", stream=browser)

    assert caught.value.headers == {"WWW-Authenticate": "Bearer"}


@pytest.mark.parametrize("stream", [pytest.param(True, id="sse"), pytest.param(False, id="api")])
def test_the_cookie_counts_on_every_route(tmp_path: Path, stream: bool) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)
    request = _request(cookie=verifier.issue("alice", ["jobs:read"], 60))

    assert auth.authenticate(request, verifier, "jobs:read", stream=stream).sub == "alice"


def test_a_route_may_refuse_the_cookie(tmp_path: Path) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)
    request = _request(cookie=verifier.issue("alice", ["jobs:read"], 60))

    with pytest.raises(errors.Unauthorized):
        auth.authenticate(request, verifier, "jobs:read", cookie=False)


@pytest.mark.parametrize("stream", [pytest.param(True, id="sse"), pytest.param(False, id="api")])
def test_the_query_token_counts_only_on_the_sse_forms(tmp_path: Path, stream: bool) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)
    request = _request(query=verifier.issue("alice", ["jobs:read"], 60))

    if stream:
        assert auth.authenticate(request, verifier, "jobs:read", stream=True).sub == "alice"
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

    assert auth.authenticate(request, verifier, "jobs:read", stream=True).sub == expected


def test_invalid_header_token_does_not_fall_back_to_cookie(tmp_path: Path) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)
    request = _request("Bearer not-a-jwt", cookie=verifier.issue("alice", ["jobs:read"], 60))

    with pytest.raises(errors.Unauthorized, match="not valid"):
        auth.authenticate(request, verifier, "jobs:read", stream=True)


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


# require_same_origin(): the CSRF check of a cookie's requests that may change something

OWN = "http://jobs.example:8000"


@pytest.mark.parametrize(
    "more",
    [
        pytest.param({"Sec-Fetch-Site": "same-origin"}, id="fetch-metadata"),
        pytest.param({"Sec-Fetch-Site": " Same-Origin "}, id="fetch-metadata-any-case"),
        pytest.param({"Origin": OWN}, id="origin"),
        pytest.param({"Origin": "HTTP://Jobs.Example:8000"}, id="origin-any-case"),
        pytest.param(
            {"Sec-Fetch-Site": "same-origin", "Origin": "https://evil.example"}, id="sfs-wins"
        ),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE", "PUT"])
def test_a_same_origin_write_passes(method: str, more: dict[str, str]) -> None:
    auth.require_same_origin(_request(method=method, more=more))


@pytest.mark.parametrize(
    ("more", "field", "problem"),
    [
        pytest.param(
            {"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site", "'cross-site'", id="cross"
        ),
        pytest.param({"Sec-Fetch-Site": "same-site"}, "Sec-Fetch-Site", "'same-site'", id="site"),
        pytest.param({"Sec-Fetch-Site": "none"}, "Sec-Fetch-Site", "'none'", id="none"),
        pytest.param(
            {"Sec-Fetch-Site": "cross-site", "Origin": OWN}, "Sec-Fetch-Site", "", id="sfs-wins"
        ),
        pytest.param({"Origin": "https://evil.example"}, "Origin", "evil", id="other-site"),
        pytest.param({"Origin": "https://jobs.example:8000"}, "Origin", "https", id="scheme"),
        pytest.param({"Origin": "http://jobs.example:8001"}, "Origin", "8001", id="port"),
        pytest.param({"Origin": "http://jobs.example"}, "Origin", "jobs", id="no-port"),
        pytest.param({"Origin": "null"}, "Origin", "'null'", id="null"),
        pytest.param({"Origin": "x" * 500}, "Origin", "…", id="long"),
        pytest.param({}, "Origin", "missing", id="neither"),
    ],
)
def test_a_cross_origin_write_is_forbidden(more: dict[str, str], field: str, problem: str) -> None:
    with pytest.raises(errors.Forbidden, match="session cookie") as caught:
        auth.require_same_origin(_request(method="POST", more=more))

    assert list(caught.value.details) == [field]
    assert problem in caught.value.details[field]
    assert len(caught.value.details[field]) < 200


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_a_safe_method_needs_no_origin(method: str) -> None:
    auth.require_same_origin(_request(method=method, more={"Sec-Fetch-Site": "cross-site"}))


@pytest.mark.parametrize(
    ("scheme", "host", "origin"),
    [
        ("http", "jobs.example:80", "http://jobs.example"),
        ("https", "jobs.example:443", "https://jobs.example"),
        ("https", "jobs.example", "https://jobs.example:443"),
    ],
)
def test_a_default_port_may_be_left_out(scheme: str, host: str, origin: str) -> None:
    request = _request(method="POST", scheme=scheme, more={"Origin": origin})
    request.scope["headers"][0] = (b"host", host.encode())

    auth.require_same_origin(request)


def test_the_cookie_is_checked_for_its_origin_and_the_header_is_not(tmp_path: Path) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)
    token = verifier.issue("alice", ["jobs:write"], 60)
    cross = {"Sec-Fetch-Site": "cross-site"}

    with pytest.raises(errors.Forbidden):
        auth.authenticate(_request(cookie=token, method="POST", more=cross), verifier, "jobs:write")
    header = _request(f"Bearer {token}", cookie=token, method="POST", more=cross)
    assert auth.authenticate(header, verifier, "jobs:write").sub == "alice"
