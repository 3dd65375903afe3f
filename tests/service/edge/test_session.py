"""`/api/v1/session` over real HTTP: the HttpOnly cookie it sets, who it says is signed in,
and signing out."""

from __future__ import annotations

import time

import httpx
import jwt

from service.edge.auth import COOKIE_NAME
from tests import sse_reader
from tests.support import SECRET, TLS

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def test_a_session_sets_an_http_only_strict_cookie(alice):
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


def test_a_browser_signs_in_once_then_uses_the_cookie_alone_until_it_signs_out(server, alice):
    job = alice.post("/api/v1/jobs", json={"type": "video.render"}).json()
    token = alice.headers["authorization"].removeprefix("Bearer ")
    with httpx.Client(
        verify=TLS, base_url=server.url, timeout=10
    ) as browser:  # keeps cookies, as one does
        assert browser.get("/api/v1/session").status_code == 401
        signed_in = browser.post("/api/v1/session", headers={"Authorization": f"Bearer {token}"})
        assert signed_in.status_code == 204
        who = browser.get("/api/v1/session")
        assert who.status_code == 200, who.text
        assert who.headers["cache-control"] == "no-store"
        body = who.json()
        assert body["sub"] == "alice"
        assert body["scopes"] == ["jobs:read", "jobs:write"]
        expires = jwt.decode(token, options={"verify_signature": False})["exp"]
        assert body["expires_at"] == time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(expires))
        path = f"/api/v1/jobs/{job['id']}/events"
        assert browser.get(path).json()["items"][0]["type"] == "created"  # the JSON form
        with browser.stream("GET", path, params={"stream": "true"}) as stream:
            assert stream.status_code == 200
            assert next(sse_reader.events(stream)).event == "created"
        signed_out = browser.delete("/api/v1/session", headers=SAME_ORIGIN)
        assert signed_out.status_code == 204
        assert "Max-Age=0" in signed_out.headers["set-cookie"]
        assert COOKIE_NAME not in browser.cookies
        assert browser.get("/api/v1/session").status_code == 401
        assert browser.get(path).status_code == 401


def test_the_session_of_an_admin_says_so(server, admin):
    who = admin.get("/api/v1/session")  # the header counts here too: it always wins
    assert who.status_code == 200
    assert (who.json()["sub"], who.json()["scopes"]) == ("root", ["admin"])


def test_an_expired_cookie_is_signed_out(server):
    now = int(time.time())
    expired = jwt.encode({"sub": "late", "iat": now - 120, "exp": now - 60}, SECRET, "HS256")
    with httpx.Client(verify=TLS, base_url=server.url, timeout=10) as browser:
        browser.cookies.set(COOKIE_NAME, expired)
        response = browser.get("/api/v1/session")
        assert response.status_code == 401
        assert response.json()["error"] == {
            "code": "unauthorized",
            "message": "The token has expired.",
            "details": {},
        }
        assert response.headers["www-authenticate"] == "Bearer"


def test_signed_out_says_how_to_sign_in(server):
    with httpx.Client(verify=TLS, base_url=server.url, timeout=10) as anonymous:
        response = anonymous.get("/api/v1/session")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == (
        "A valid bearer token or session cookie is required."
    )


def test_deleting_the_session_clears_the_cookie(alice):
    response = alice.delete("/api/v1/session")
    assert response.status_code == 204
    cookie = response.headers["set-cookie"]
    assert cookie.startswith((f'{COOKIE_NAME}="";', f"{COOKIE_NAME}=;"))
    assert "Max-Age=0" in cookie


def test_a_session_needs_the_bearer_header_not_the_cookie(server):
    with httpx.Client(verify=TLS, base_url=server.url, timeout=10) as anonymous:
        assert anonymous.post("/api/v1/session").status_code == 401
        anonymous.cookies.set(COOKIE_NAME, server.token())
        # a cookie never renews itself, even from our own origin
        assert anonymous.post("/api/v1/session", headers=SAME_ORIGIN).status_code == 401
        assert anonymous.delete("/api/v1/session", headers=SAME_ORIGIN).status_code == 204
