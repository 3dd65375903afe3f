"""POST and DELETE /api/v1/session: the browser's token cookie for EventSource."""

from __future__ import annotations

import httpx

from service.edge.auth import COOKIE_NAME
from tests import sse_reader


def test_a_session_sets_an_http_only_strict_cookie_that_the_streams_accept(server, alice):
    job = alice.post("/api/v1/jobs", json={"type": "video.render"}).json()
    response = alice.post("/api/v1/session")
    assert response.status_code == 204
    cookie = response.headers["set-cookie"]
    token = alice.headers["authorization"].removeprefix("Bearer ")
    assert cookie.startswith(f"{COOKIE_NAME}={token};")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "max-age", "path", "samesite"} <= attributes
    assert "secure" not in attributes  # plain http here; https adds Secure
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Path=/api/v1" in cookie
    max_age = int(cookie.split("Max-Age=")[1].split(";")[0])
    assert 0 < max_age <= 600
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        browser.cookies.set(COOKIE_NAME, token)
        path = f"/api/v1/jobs/{job['id']}/events"
        with browser.stream("GET", path, params={"stream": "true"}) as stream:
            assert stream.status_code == 200
            assert next(sse_reader.events(stream)).event == "created"
        assert browser.get(path).status_code == 401  # the JSON form ignores the cookie


def test_deleting_the_session_clears_the_cookie(alice):
    response = alice.delete("/api/v1/session")
    assert response.status_code == 204
    cookie = response.headers["set-cookie"]
    assert cookie.startswith((f'{COOKIE_NAME}="";', f"{COOKIE_NAME}=;"))
    assert "Max-Age=0" in cookie


def test_a_session_needs_the_bearer_header(server):
    with httpx.Client(base_url=server.url, timeout=10) as anonymous:
        assert anonymous.post("/api/v1/session").status_code == 401
        anonymous.cookies.set(COOKIE_NAME, server.token())
        assert anonymous.post("/api/v1/session").status_code == 401
        assert anonymous.delete("/api/v1/session").status_code == 401
