"""Attacks on authentication, over real HTTP (RFC 8725's practices; API.md, "Auth"): forged,
confused, expired, misdirected, tampered and oversized tokens, and tokens in the wrong place.

Each is tried on a route of every kind: a JSON read, a write, both SSE streams, a worker's
claim and call, and the dashboard's session exchange. Every one is a 401 in API.md's error
shape with `WWW-Authenticate: Bearer`, sets no cookie and writes nothing; every refused token
gets the same body (a token that would be accepted but has expired says so: its client may
renew it), so an attacker learns nothing about which check failed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.edge import auth
from tests.service import http_clients, tenancy
from tests.support import SECRET, LiveServer, make_settings

ISSUER = "https://id.example.com/"
AUDIENCE = "jobtrail"
SSE = {"Accept": "text/event-stream"}
JOB = str(uuid.UUID(int=7, version=4))

INVALID = {"error": {"code": "unauthorized", "message": auth.INVALID_TOKEN, "details": {}}}
EXPIRED = {"error": {"code": "unauthorized", "message": auth.EXPIRED_TOKEN, "details": {}}}
NO_TOKEN = {
    "error": {
        "code": "unauthorized",
        "message": "A valid bearer token or session cookie is required.",
        "details": {},
    }
}
NOT_BEARER = {
    "error": {
        "code": "unauthorized",
        "message": "The Authorization header must be 'Bearer <token>'.",
        "details": {},
    }
}

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
TWICE_COOKIE = {
    "error": {
        "code": "unauthorized",
        "message": f"The {auth.COOKIE_NAME} cookie must be sent once: it was sent more than once.",
        "details": {},
    }
}

# (method, path, headers, body): a route of every kind, each with what it needs past the token.
ROUTES = [
    pytest.param("GET", "/api/v1/jobs", {}, None, id="json-read"),
    pytest.param("POST", "/api/v1/jobs", {}, {"type": "t"}, id="write"),
    pytest.param("GET", "/api/v1/events", SSE, None, id="stream-all"),
    pytest.param("GET", f"/api/v1/jobs/{JOB}/events?stream=true", {}, None, id="stream-job"),
    pytest.param("POST", "/api/v1/workers/claim", {}, {"types": ["t"]}, id="worker-claim"),
    pytest.param("POST", f"/api/v1/jobs/{JOB}/heartbeat", {"Job-Lease": "x"}, None, id="worker"),
    pytest.param("POST", "/api/v1/session", {}, None, id="session-exchange"),
    pytest.param("GET", "/api/v1/session", {}, None, id="session-read"),
]


# Tokens, as an attacker makes them.


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    """A valid token's claims for the guarded server (admin: the prize), with `overrides`;
    None removes a claim."""
    base = {
        "sub": "alice",
        "exp": int(time.time()) + 600,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "scope": "jobs:read jobs:write worker admin",
    }
    merged = {**base, **overrides}
    return {name: value for name, value in merged.items() if value is not None}


def hs256(body: dict[str, Any], key: str | bytes = SECRET) -> str:
    return jwt.encode(body, key, algorithm="HS256")


def forge(header: dict[str, Any], body: dict[str, Any], key: bytes | None) -> str:
    """A token whose header PyJWT would not write (alg none; an HMAC keyed with anything)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
    if key is None:
        return f"{signing_input}."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def tampered(token: str, **changes: Any) -> str:
    header, _, signature = token.split(".")
    body = {**jwt.decode(token, options={"verify_signature": False}), **changes}
    return f"{header}.{_b64(json.dumps(body).encode())}.{signature}"


_RSA = rsa.generate_private_key(65537, 2048)
_HOUR_AGO = int(time.time()) - 3600

# Every token here is refused with INVALID, whatever failed.
BAD_TOKENS: dict[str, Callable[[], str]] = {
    "alg-none": lambda: forge({"alg": "none", "typ": "JWT"}, claims(), None),
    "alg-none-signed": lambda: forge({"alg": "none"}, claims(), SECRET.encode()),
    "hs512-not-allowed": lambda: jwt.encode(claims(), SECRET + "x" * 32, algorithm="HS512"),
    "rs256": lambda: jwt.encode(claims(), _RSA, algorithm="RS256"),
    "es256": lambda: jwt.encode(claims(), ec.generate_private_key(ec.SECP256R1()), "ES256"),
    "wrong-secret": lambda: hs256(claims(), "w" * 40),
    "expired-wrong-secret": lambda: hs256(claims(exp=_HOUR_AGO), "w" * 40),
    "not-yet-valid": lambda: hs256(claims(nbf=int(time.time()) + 600)),
    "wrong-issuer": lambda: hs256(claims(iss="https://evil.example/")),
    "missing-issuer": lambda: hs256(claims(iss=None)),
    "wrong-audience": lambda: hs256(claims(aud="another-service")),
    "missing-audience": lambda: hs256(claims(aud=None)),
    "expired-wrong-audience": lambda: hs256(claims(aud="another-service", exp=_HOUR_AGO)),
    "missing-sub": lambda: hs256(claims(sub=None)),
    "missing-exp": lambda: hs256(claims(exp=None)),
    "tampered-sub": lambda: tampered(hs256(claims(scope="jobs:read")), sub="bob"),
    "tampered-scope": lambda: tampered(hs256(claims(scope="jobs:read")), scope="admin"),
    "tampered-exp": lambda: tampered(hs256(claims(exp=_HOUR_AGO)), exp=int(time.time()) + 600),
    "tampered-signature": lambda: hs256(claims())[:-2] + "AA",
    "no-signature": lambda: hs256(claims()).rpartition(".")[0] + ".",
    "oversized-signed": lambda: hs256(claims(pad="x" * 64 * 1024)),
    "garbage": lambda: "not.a.jwt",
}


def send(
    client: httpx.Client,
    method: str,
    path: str,
    headers: Any = None,
    body: Any = None,
    params: Any = None,
) -> httpx.Response:
    """tenancy.send, with `params` merged into a query the path already has (httpx's
    `params=` would replace it)."""
    url = str(httpx.URL(path).copy_merge_params(params)) if params else path
    return tenancy.send(client, method, url, body=body, headers=headers)


def assert_refused(response: httpx.Response, expected: dict[str, Any]) -> None:
    assert response.status_code == 401, (response.request.url, response.text)
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == expected
    assert "set-cookie" not in response.headers


def last_event_id(client: httpx.Client) -> int:
    return int(client.get("/readyz").json()["last_event_id"] or 0)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server that also checks the issuer and the audience."""
    settings = make_settings(
        tmp_path_factory.mktemp("guarded"), jwt_issuer=ISSUER, jwt_audience=AUDIENCE
    )
    live = LiveServer(settings).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def anonymous(guarded: LiveServer) -> Iterator[httpx.Client]:
    """A client without credentials (nothing here answers with a cookie to keep)."""
    with http_clients.client(guarded.url) as client:
        yield client


# Forged and misdirected tokens


@pytest.fixture(scope="module")
def bad_tokens() -> dict[str, str]:
    return {name: make() for name, make in BAD_TOKENS.items()}


@pytest.mark.parametrize(("method", "path", "headers", "body"), ROUTES)
def test_every_bad_token_is_refused_with_one_and_the_same_answer(
    guarded, anonymous, bad_tokens, method, path, headers, body
):
    before = last_event_id(anonymous)
    for name, token in bad_tokens.items():
        bearer = {"Authorization": f"Bearer {token}"}
        response = send(anonymous, method, path, headers | bearer, body)
        assert response.json() == INVALID, name
        assert_refused(response, INVALID)
    assert last_event_id(anonymous) == before


@pytest.mark.parametrize(("method", "path", "headers", "body"), ROUTES)
def test_an_expired_token_that_would_be_accepted_says_so(
    guarded, anonymous, method, path, headers, body
):
    expired = {"Authorization": f"Bearer {hs256(claims(exp=int(time.time()) - 1))}"}

    assert_refused(send(anonymous, method, path, headers | expired, body), EXPIRED)


def test_the_good_token_of_these_tests_is_accepted(guarded, anonymous):
    """The control: what the bad tokens above were made from passes every check."""
    bearer = {"Authorization": f"Bearer {hs256(claims())}"}
    answer = anonymous.get("/api/v1/session", headers=bearer)
    assert answer.status_code == 200, answer.text
    assert answer.json()["sub"] == "alice"


def test_a_refused_head_request_says_bearer_too(anonymous):
    response = anonymous.head("/api/v1/jobs", headers={"Authorization": "Bearer not.a.jwt"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


# HS/RS key confusion: a server that verifies RS256 with a public key


@pytest.fixture(scope="module")
def rsa_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, bytes]]:
    directory = tmp_path_factory.mktemp("rs256")
    pem = _RSA.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (directory / "public.pem").write_bytes(pem)
    live = LiveServer(make_settings(directory, jwt_public_key=directory / "public.pem")).start()
    yield live, pem
    live.stop()


def _rs_claims() -> dict[str, Any]:
    return claims(iss=None, aud=None)


def _der(pem: bytes) -> bytes:
    return serialization.load_pem_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


CONFUSED: dict[str, Callable[[bytes], str]] = {
    # The classic: an HMAC keyed with the public key, which anyone may read.
    "hs256-keyed-with-the-pem": lambda pem: forge({"alg": "HS256"}, _rs_claims(), pem),
    "hs256-keyed-with-the-pem-stripped": lambda pem: forge(
        {"alg": "HS256"}, _rs_claims(), pem.strip()
    ),
    "hs256-keyed-with-the-der": lambda pem: forge({"alg": "HS256"}, _rs_claims(), _der(pem)),
    "hs256-with-a-secret": lambda pem: hs256(_rs_claims()),
    "alg-none": lambda pem: forge({"alg": "none"}, _rs_claims(), None),
    # The right key, but not the pinned algorithm.
    "rs512": lambda pem: jwt.encode(_rs_claims(), _RSA, algorithm="RS512"),
    "ps256": lambda pem: jwt.encode(_rs_claims(), _RSA, algorithm="PS256"),
    "another-rsa-key": lambda pem: jwt.encode(
        _rs_claims(), rsa.generate_private_key(65537, 2048), algorithm="RS256"
    ),
    "es256": lambda pem: jwt.encode(_rs_claims(), ec.generate_private_key(ec.SECP256R1()), "ES256"),
}


@pytest.fixture(scope="module")
def confused_tokens(rsa_server: tuple[LiveServer, bytes]) -> dict[str, str]:
    _, pem = rsa_server
    return {name: make(pem) for name, make in CONFUSED.items()}


@pytest.mark.parametrize(("method", "path", "headers", "body"), ROUTES)
def test_an_rs256_server_refuses_every_other_algorithm_and_key(
    rsa_server, confused_tokens, method, path, headers, body
):
    server, _ = rsa_server
    with http_clients.client(server.url) as anonymous:
        before = last_event_id(anonymous)
        for name, token in confused_tokens.items():
            bearer = {"Authorization": f"Bearer {token}"}
            response = send(anonymous, method, path, headers | bearer, body)
            assert response.json() == INVALID, name
            assert_refused(response, INVALID)
        assert last_event_id(anonymous) == before


def test_an_rs256_server_accepts_its_own_algorithm(rsa_server):
    server, _ = rsa_server
    token = jwt.encode(_rs_claims(), _RSA, algorithm="RS256")
    with http_clients.bearer_token(server.url, token) as client:
        answer = client.get("/api/v1/session")
    assert answer.status_code == 200, answer.text
    assert answer.json()["sub"] == "alice"


# Tokens in the wrong place


@pytest.fixture(scope="module")
def good(guarded: LiveServer) -> str:
    return guarded.token("alice", "jobs:read jobs:write worker")


def _misplaced(good: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(what, request options, the answer): a valid token where no route reads it, or next to
    a bad one."""
    other = hs256(claims(sub="bob"))
    cookie = f"{auth.COOKIE_NAME}={good}"
    return [
        ("query access_token", {"params": {"access_token": good}}, NO_TOKEN),
        ("query token", {"params": {"token": good}}, NO_TOKEN),
        ("query jwt", {"params": {"jwt": good}}, NO_TOKEN),
        (
            "basic",
            {"headers": {"Authorization": f"Basic {_b64(f'x:{good}'.encode())}"}},
            NOT_BEARER,
        ),
        ("no scheme", {"headers": {"Authorization": good}}, NOT_BEARER),
        ("token scheme", {"headers": {"Authorization": f"Token {good}"}}, NOT_BEARER),
        (
            "two in one header",
            {"headers": {"Authorization": f"Bearer {good}, Bearer {good}"}},
            NOT_BEARER,
        ),
        ("other header", {"headers": {"X-Access-Token": good, "X-Auth-Token": good}}, NO_TOKEN),
        (
            "two headers, both valid",
            {
                "headers": [
                    ("Authorization", f"Bearer {good}"),
                    ("Authorization", f"Bearer {other}"),
                ]
            },
            NOT_BEARER,
        ),
        (
            "two headers, the bad one first",
            {"headers": [("Authorization", "Bearer x.y.z"), ("Authorization", f"Bearer {good}")]},
            NOT_BEARER,
        ),
        (
            "two headers, the good one first",
            {"headers": [("Authorization", f"Bearer {good}"), ("Authorization", "Bearer x.y.z")]},
            NOT_BEARER,
        ),
        (
            "a bad header and a good cookie",
            {"headers": {"Authorization": "Bearer x.y.z", "Cookie": cookie}},
            INVALID,
        ),
        (
            "a basic header and a good cookie",
            {"headers": {"Authorization": "Basic eDp5", "Cookie": cookie}},
            NOT_BEARER,
        ),
        (
            "an expired header and a good cookie",
            {
                "headers": {
                    "Authorization": f"Bearer {hs256(claims(exp=_HOUR_AGO))}",
                    "Cookie": cookie,
                }
            },
            EXPIRED,
        ),
        (
            "the cookie twice in one header",
            {"headers": {"Cookie": f"{cookie}; {auth.COOKIE_NAME}={other}", **SAME_ORIGIN}},
            TWICE_COOKIE,
        ),
        (
            "the cookie in two headers",
            {
                "headers": [
                    ("Cookie", f"{auth.COOKIE_NAME}={other}"),
                    ("Cookie", cookie),
                    *SAME_ORIGIN.items(),
                ]
            },
            TWICE_COOKIE,
        ),
    ]


def _streams(path: str, headers: dict[str, str]) -> bool:
    return "stream=true" in path or headers == SSE


def _exchange(method: str, path: str) -> bool:
    """The session exchange reads the Authorization header only: a cookie never renews itself."""
    return (method, path) == ("POST", "/api/v1/session")


@pytest.mark.parametrize(("method", "path", "headers", "body"), ROUTES)
def test_a_token_in_the_wrong_place_is_not_read(anonymous, good, method, path, headers, body):
    before = last_event_id(anonymous)
    for what, options, expected in _misplaced(good):
        if what == "query access_token" and _streams(path, headers):
            continue  # where it is read: test_the_stream_query_token_...
        if expected == TWICE_COOKIE and _exchange(method, path):
            expected = NO_TOKEN
        more = options.get("headers", {})
        pairs = list(more.items()) if isinstance(more, dict) else more
        response = send(
            anonymous, method, path, [*headers.items(), *pairs], body, options.get("params")
        )
        assert response.json() == expected, what
        assert_refused(response, expected)
    if method == "POST":  # a body field is no place for a token either
        fields = {**(body or {}), "access_token": good, "token": good}
        assert_refused(send(anonymous, method, path, headers, fields), NO_TOKEN)
    assert last_event_id(anonymous) == before


@pytest.mark.parametrize("path", [f"/api/v1/jobs/{JOB}/events", "/api/v1/events"])
def test_the_stream_query_token_is_read_once_and_only_from_access_token(
    guarded, anonymous, good, path
):
    other = guarded.token("bob")
    twice = send(
        anonymous, "GET", path, SSE, params=[("access_token", good), ("access_token", other)]
    )
    assert_refused(
        twice,
        {
            "error": {
                "code": "unauthorized",
                "message": "?access_token= must be sent once: it was sent more than once.",
                "details": {},
            }
        },
    )
    assert_refused(send(anonymous, "GET", path, SSE, params={"token": good}), NO_TOKEN)
    # A bad header wins over a good query token.
    bad = {"Authorization": "Bearer x.y.z", **SSE}
    assert_refused(send(anonymous, "GET", path, bad, params={"access_token": good}), INVALID)


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_the_scheme_is_case_insensitive(anonymous, good, scheme):
    # RFC 6750 §2.1 takes the auth-scheme of RFC 9110 §11.1, which is case-insensitive.
    answer = anonymous.get("/api/v1/session", headers={"Authorization": f"{scheme} {good}"})
    assert answer.status_code == 200, answer.text


# Oversized tokens and headers


@pytest.mark.parametrize(("method", "path", "headers", "body"), ROUTES)
def test_an_oversized_token_is_refused_wherever_it_is_sent(
    guarded, anonymous, method, path, headers, body
):
    huge = hs256(claims(pad="x" * 64 * 1024))  # signed with the right key: size alone refuses it
    cookie = {"Cookie": f"{auth.COOKIE_NAME}={huge}", **SAME_ORIGIN}
    expected = NO_TOKEN if _exchange(method, path) else INVALID
    assert_refused(send(anonymous, method, path, headers | cookie, body), expected)
    if _streams(path, headers):  # a URL holds less (httpx: 64 KiB)
        query = {"access_token": hs256(claims(pad="x" * 2 * auth.MAX_TOKEN))}
        assert_refused(send(anonymous, method, path, headers, body, query), INVALID)


@pytest.mark.parametrize("size", [64 << 10, 1 << 20])
def test_a_huge_authorization_header_is_refused_never_a_server_error(guarded, anonymous, size):
    response = send(anonymous, "GET", "/api/v1/jobs", {"Authorization": "Bearer " + "a" * size})

    assert response.status_code in (401, 431), response.text[:200]
    if response.status_code == 401:
        assert_refused(response, INVALID)


def test_many_large_headers_are_never_a_server_error(guarded, anonymous):
    padding = [(f"X-Pad-{i}", "p" * 8000) for i in range(128)]  # 1 MiB of headers
    response = send(anonymous, "GET", "/api/v1/jobs", padding)

    assert response.status_code in (401, 431), response.text[:200]
