"""Signing in and out of the dashboard in Chromium: the sign-in link, a pasted token, the
signed-out and expired states, and that the HttpOnly cookie is the page's only credential: no
storage, no readable cookie and no address holds the token, and it is sent once."""

from __future__ import annotations

import time

import jwt
from playwright.sync_api import expect

from tests.support import SECRET

USER = "jobs:read jobs:write"


def _session_cookie(context):
    return [c for c in context.cookies() if c["name"] == "jobtrail_token"]


# Every place a script of the page could find the token: both storages, every value of each,
# the cookies scripts see (none: the session cookie is HttpOnly), and the address.
_WHAT_SCRIPTS_SEE = """() => {
    const values = (storage) => Object.keys(storage).map((key) => key + "=" + storage.getItem(key));
    return {
        local: values(localStorage),
        session: values(sessionStorage),
        cookie: document.cookie,
        url: location.href,
        history: history.length,
    };
}"""


def _assert_no_script_sees(page, token):
    seen = page.evaluate(_WHAT_SCRIPTS_SEE)
    assert not any(token in value for value in seen["local"] + seen["session"]), seen
    assert seen["cookie"] == "", seen  # HttpOnly: not in document.cookie
    assert token not in seen["url"] and "token" not in seen["url"], seen


def test_a_pasted_token_signs_in_is_kept_nowhere_and_writes_pass_the_csrf_check(context, live):
    page = context.new_page()
    page.goto(f"{live.url}/")
    expect(page.locator('[data-state="signed-out"]')).to_have_text("You are signed out.")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert _session_cookie(context) == []
    field = page.get_by_label("Access token (JWT)")
    field.fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#notice")).to_contain_text("That token was refused:")
    expect(field).to_have_value("")  # not kept in the form either
    token = live.token("paster", USER)
    field.fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    expect(page.locator("#account")).to_contain_text("Signed in as paster")
    _assert_no_script_sees(page, token)
    # A write from the page: the cookie and the browser's own Sec-Fetch-Site pass the check.
    with live.client("paster") as paster:
        job = paster.post("/api/v1/jobs", json={"type": "keep.me"}).json()
    page.goto(f"{live.url}/jobs/{job['id']}")
    expect(page.get_by_role("button", name="Cancel")).to_be_enabled()
    with page.expect_response(f"{live.url}/api/v1/jobs/{job['id']}/cancel") as answer:
        page.get_by_role("button", name="Cancel").click()
    assert answer.value.status == 200
    request = answer.value.request
    assert "authorization" not in request.headers
    assert request.header_value("sec-fetch-site") == "same-origin"
    _assert_no_script_sees(page, token)


def test_the_sign_in_link_sets_the_cookie_and_leaves_the_address_bar(context, live):
    token = live.token("linker", USER)
    page = context.new_page()
    sent = []
    page.on("request", lambda request: sent.append(request))
    page.goto(f"{live.url}/?token={token}")
    expect(page.locator("#account")).to_contain_text("Signed in as linker")
    expect(page.locator(".live")).to_have_attribute("data-state", "live")  # the cookie works
    assert "token" not in page.url
    _assert_no_script_sees(page, token)
    [cookie] = _session_cookie(context)
    assert cookie["value"] == token
    assert cookie["httpOnly"] and cookie["path"] == "/api/v1" and cookie["sameSite"] == "Strict"
    # The token went out once, to POST /api/v1/session; every other call sent the cookie alone.
    calls = [r for r in sent if "/api/" in r.url]
    with_token = [f"{r.method} {r.url}" for r in calls if "authorization" in r.headers]
    assert with_token == [f"POST {live.url}/api/v1/session"]
    assert not [r.url for r in sent if r.url != f"{live.url}/?token={token}" and token in r.url]
    assert {"GET /api/v1/session", "GET /api/v1/jobs"} <= {
        f"{r.method} {r.url.removeprefix(live.url).partition('?')[0]}" for r in calls
    }
    page.go_back()  # replaced, not pushed: no entry of the history keeps the token
    assert page.url == "about:blank"
    page.go_forward()
    expect(page.locator("#account")).to_contain_text("Signed in as linker")  # the cookie, again
    _assert_no_script_sees(page, token)
    other_tab = context.new_page()
    other_tab.goto(f"{live.url}/")
    expect(other_tab.locator("#account")).to_contain_text("Signed in as linker")
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator('[data-state="signed-out"]')).to_have_text("You signed out.")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert _session_cookie(context) == []
    expect(other_tab.locator('[data-state="signed-out"]')).to_have_text(
        "You signed out in another tab."
    )
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
