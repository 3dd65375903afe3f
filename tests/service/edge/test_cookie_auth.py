"""The session cookie as the credential of every `/api/v1` route, over real HTTP, and the CSRF
check of its requests that change something (API.md, "Auth").

`browser` is a client as a browser is after signing in: the cookie and no Authorization header.
Its writes send `Sec-Fetch-Site` or `Origin` as Chromium does; the refused ones send what
another site's page would make a browser send (or nothing), and must write nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from service.edge.auth import COOKIE_NAME, QUERY_PARAMETER
from tests.support import TLS, LiveServer, create

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def browser_of(server: LiveServer, sub: str, scopes: str = "jobs:read jobs:write") -> httpx.Client:
    client = httpx.Client(verify=TLS, base_url=server.url, timeout=30)
    client.cookies.set(COOKIE_NAME, server.token(sub, scopes))
    return client


@pytest.fixture
def browser(shared_server: LiveServer, request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """A browser signed in as a user of its own (named after the test)."""
    with browser_of(shared_server, f"b-{request.node.name}"[:200]) as client:
        yield client


def last_event_id(server: LiveServer) -> int:
    return int(httpx.get(f"{server.url}/readyz", verify=TLS).json()["last_event_id"] or 0)


def test_the_cookie_works_on_reading_and_writing_routes(browser):
    created = browser.post("/api/v1/jobs", json={"type": "t"}, headers=SAME_ORIGIN)
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["owner"].startswith("b-test_the_cookie_works")
    path = f"/api/v1/jobs/{job['id']}"
    assert browser.get(path).json()["id"] == job["id"]
    assert [item["id"] for item in browser.get("/api/v1/jobs").json()["items"]] == [job["id"]]
    patched = browser.patch(path, json={"starred": True}, headers=SAME_ORIGIN)
    assert patched.status_code == 200, patched.text
    assert patched.json()["starred"] is True
    cancelled = browser.post(f"{path}/cancel", headers=SAME_ORIGIN)
    assert cancelled.status_code == 200, cancelled.text
    assert browser.post(f"{path}/replay", headers=SAME_ORIGIN).status_code == 201
    assert browser.delete(path, headers=SAME_ORIGIN).status_code == 204
    assert browser.get(path).status_code == 404


def test_an_origin_header_naming_this_server_passes_without_fetch_metadata(shared_server, browser):
    # Over plain http to a host that is not localhost, browsers send no Sec-Fetch-Site.
    created = browser.post(
        "/api/v1/jobs", json={"type": "t"}, headers={"Origin": shared_server.url}
    )
    assert created.status_code == 201, created.text


def test_a_worker_cookie_works_on_the_worker_routes(shared_server):
    with browser_of(shared_server, "w-cookie", "worker") as worker:
        body = {"types": ["cookie.none"], "worker_id": "w-cookie", "wait_seconds": 0}
        assert (
            worker.post("/api/v1/workers/claim", json=body, headers=SAME_ORIGIN).status_code == 204
        )
        assert worker.post("/api/v1/workers/claim", json=body).status_code == 403


def test_the_header_beats_the_cookie(shared_server):
    with browser_of(shared_server, "cookie-owner") as both:
        header = {"Authorization": f"Bearer {shared_server.token('header-owner')}"}
        job = create(both, headers=header)
        assert job["owner"] == "header-owner"
        # A bad header is refused; the cookie is not tried instead.
        refused = both.get("/api/v1/jobs", headers={"Authorization": "Bearer not-a-jwt"})
        assert refused.status_code == 401


CROSS_ORIGIN = [
    pytest.param({"Sec-Fetch-Site": "cross-site"}, id="sec-fetch-site-cross-site"),
    pytest.param({"Sec-Fetch-Site": "same-site"}, id="sec-fetch-site-same-site"),
    pytest.param({"Origin": "https://evil.example"}, id="origin-evil"),
    pytest.param({"Origin": "null"}, id="origin-null"),
    pytest.param({}, id="neither"),
]


@pytest.mark.parametrize("headers", CROSS_ORIGIN)
def test_a_cross_origin_write_with_the_cookie_is_forbidden_and_writes_nothing(
    shared_server, headers
):
    with shared_server.client("victim") as victim, browser_of(shared_server, "victim") as browser:
        job = create(victim)
        path = f"/api/v1/jobs/{job['id']}"
        before = last_event_id(shared_server)
        attempts = [
            browser.post("/api/v1/jobs", json={"type": "t"}, headers=headers),
            browser.patch(path, json={"starred": True}, headers=headers),
            browser.post(f"{path}/cancel", headers=headers),
            browser.post("/api/v1/cancel", headers=headers),
            browser.delete(path, headers=headers),
            browser.delete("/api/v1/session", headers=headers),
        ]
        for response in attempts:
            assert response.status_code == 403, response.request
            error = response.json()["error"]
            assert error["code"] == "forbidden"
            assert "session cookie" in error["message"]
            assert error["message"].endswith("send 'Authorization: Bearer <token>' instead.")
            assert set(error["details"]) <= {"Sec-Fetch-Site", "Origin"}
            assert "set-cookie" not in response.headers
        assert last_event_id(shared_server) == before
        assert victim.get(path).json() == job
        assert browser.get(path).json() == job  # reading is not refused


def test_the_bearer_header_needs_no_origin(shared_server):
    with shared_server.client("bearer-user") as client:
        assert client.post("/api/v1/jobs", json={"type": "t"}).status_code == 201
        cross = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
        assert client.post("/api/v1/jobs", json={"type": "t"}, headers=cross).status_code == 201


def test_the_query_token_counts_only_on_the_sse_forms(shared_server):
    token = {QUERY_PARAMETER: shared_server.token("querier")}
    with httpx.Client(verify=TLS, base_url=shared_server.url, timeout=30) as anonymous:
        assert anonymous.get("/api/v1/jobs", params=token).status_code == 401
        assert anonymous.get("/api/v1/events", params=token).status_code == 401
        assert anonymous.get("/api/v1/session", params=token).status_code == 401
        created = anonymous.post("/api/v1/jobs", params=token, json={"type": "t"})
        assert created.status_code == 401
        stream = {**token, "stream": "true", "after": "0"}
        with anonymous.stream("GET", "/api/v1/events", params=stream) as live:
            assert live.status_code == 200
            assert live.headers["content-type"].startswith("text/event-stream")
