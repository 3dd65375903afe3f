"""Issue 7, over real HTTP: a signed token whose `sub` nothing could store (not valid Unicode,
or longer than 255 characters) is a 401 on every route, however the token is sent."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from tests.service.edge.hostile import assert_error, open_stream
from tests.support import SECRET, TLS


def signed(sub: str, scope: str = "jobs:read jobs:write worker admin") -> str:
    claims = {
        "sub": sub,
        "exp": int(time.time()) + 600,
        "scope": scope,
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


JOB = "00000000-0000-4000-8000-000000000000"
EVERY_ROUTE = [
    ("GET", "/api/v1/jobs"),
    ("POST", "/api/v1/jobs"),
    ("GET", f"/api/v1/jobs/{JOB}"),
    ("PATCH", f"/api/v1/jobs/{JOB}"),
    ("DELETE", f"/api/v1/jobs/{JOB}"),
    ("POST", f"/api/v1/jobs/{JOB}/cancel"),
    ("POST", f"/api/v1/jobs/{JOB}/replay"),
    ("GET", f"/api/v1/jobs/{JOB}/events"),
    ("POST", "/api/v1/cancel"),
    ("GET", "/api/v1/events"),
    ("POST", "/api/v1/workers/claim"),
    *[
        ("POST", f"/api/v1/jobs/{JOB}/{action}")
        for action in ("heartbeat", "progress", "logs", "succeed", "fail", "cancelled")
    ],
    ("POST", "/api/v1/session"),
    ("DELETE", "/api/v1/session"),
]
BAD_SUBJECTS = [
    pytest.param("\ud800", id="lone-high-surrogate"),
    pytest.param("alice\udfff", id="lone-low-surrogate"),
    pytest.param("\udc00\ud800", id="reversed-pair"),
    pytest.param("x" * 256, id="256-characters"),
]


def assert_unauthorized_sub(response: httpx.Response) -> None:
    details = assert_error(response, 401, "unauthorized")
    assert list(details) == ["sub"]
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.fixture(scope="module")
def anonymous(shared_server):
    with httpx.Client(verify=TLS, base_url=shared_server.url, timeout=5) as client:
        yield client


@pytest.mark.parametrize("sub", BAD_SUBJECTS)
@pytest.mark.parametrize(("method", "path"), EVERY_ROUTE)
def test_signed_token_whose_sub_cannot_be_stored_is_401(anonymous, method, path, sub):
    headers = {"Authorization": f"Bearer {signed(sub)}"}

    assert_unauthorized_sub(anonymous.request(method, path, headers=headers))


@pytest.mark.parametrize("sub", BAD_SUBJECTS)
@pytest.mark.parametrize(
    ("path", "how"),
    [
        pytest.param("/api/v1/events", "query", id="all-stream-query"),
        pytest.param(f"/api/v1/jobs/{JOB}/events", "query", id="job-stream-query"),
        pytest.param("/api/v1/events", "cookie", id="all-stream-cookie"),
        pytest.param(f"/api/v1/jobs/{JOB}/events", "cookie", id="job-stream-cookie"),
    ],
)
def test_stream_token_from_the_query_or_cookie_whose_sub_cannot_be_stored_is_401(
    shared_server, path, how, sub
):
    token = signed(sub)
    cookies = {"jobtrail_token": token} if how == "cookie" else None
    params = {"access_token": token} if how == "query" else None
    with httpx.Client(verify=TLS, base_url=shared_server.url, cookies=cookies, timeout=5) as client:
        response = open_stream(
            client, f"{path}?{httpx.QueryParams(params)}" if params else path, {}
        )

    assert_unauthorized_sub(response)


def test_a_sub_of_255_characters_is_an_owner(anonymous):
    sub = "\u00e9" * 255
    headers = {"Authorization": f"Bearer {signed(sub, 'jobs:read jobs:write')}"}

    created = anonymous.post("/api/v1/jobs", json={"type": "t"}, headers=headers)

    assert created.status_code == 201, created.text
    assert created.json()["owner"] == sub
    assert anonymous.get("/api/v1/jobs", headers=headers).json()["items"] == [created.json()]
