"""Signing in and out of the dashboard in Chromium: the sign-in link, a pasted token, the
signed-out and expired states, and what the cookie and the address bar hold."""

from __future__ import annotations

import time

import jwt
from playwright.sync_api import expect

from tests.service.dashboard.conftest import sign_in
from tests.support import SECRET

USER = "jobs:read jobs:write"


def _session_cookie(context):
    return [c for c in context.cookies() if c["name"] == "jobtrail_token"]


def test_the_signed_out_page_offers_a_form_and_sign_in_by_paste_works(context, live):
    page = context.new_page()
    page.goto(f"{live.url}/")
    expect(page.locator('[data-state="signed-out"]')).to_have_text("You are signed out.")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert _session_cookie(context) == []
    field = page.get_by_label("Access token (JWT)")
    field.fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#notice")).to_contain_text("That token was refused:")
    field.fill(live.token("paster", USER))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    expect(page.locator("#account")).to_contain_text("Signed in as paster")


def test_the_sign_in_link_sets_the_cookie_and_leaves_the_address_bar(context, live):
    page = sign_in(context, live, "linker", USER, "/")
    assert "token" not in page.url
    page.go_back()  # replaced, not pushed: no entry of the history keeps the token
    assert page.url == "about:blank"
    page.go_forward()
    expect(page.locator("#account")).to_contain_text("Signed in as linker")  # kept, not in URL
    [cookie] = _session_cookie(context)
    assert cookie["httpOnly"] and cookie["path"] == "/api/v1" and cookie["sameSite"] == "Strict"
    expect(page.locator(".live")).to_have_attribute("data-state", "live")  # the cookie works
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator('[data-state="signed-out"]')).to_have_text("You signed out.")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert _session_cookie(context) == []
    page.reload()
    expect(page.locator('[data-state="signed-out"]')).to_have_text("You are signed out.")


def test_an_expired_token_says_so(context, live):
    now = int(time.time())
    expired = jwt.encode({"sub": "late", "iat": now - 120, "exp": now - 60}, SECRET, "HS256")
    page = context.new_page()
    page.goto(f"{live.url}/?token={expired}")
    expect(page.locator('[data-state="signed-out"]')).to_have_text(
        "The token in the link was refused: The token has expired."
    )
    assert "token" not in page.url


def test_a_session_that_expires_while_open_turns_into_the_sign_in_form(context, live):
    page = context.new_page()
    page.goto(f"{live.url}/?token={live.verifier.issue('brief', ['jobs:read'], 4)}")
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    expect(page.locator('[data-state="signed-out"]')).to_contain_text("expired", timeout=10_000)
