"""The dashboard in a real browser: Debian's Chromium, driven by Playwright (which never
downloads a browser here: `executable_path`). One browser for the package, one server per module.

Without Chromium the browser tests skip, saying why; CI sets JOBTRAIL_REQUIRE_BROWSER=1
(.ci/run), which turns that skip into a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.support import LiveServer, make_settings

CHROMIUM = Path(os.environ.get("JOBTRAIL_CHROMIUM", "/usr/bin/chromium"))
# No sandbox (CI runs as root); nothing that phones home (the network here is closed).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
expect.set_options(timeout=15_000)


@pytest.fixture(scope="package")  # one browser for every dashboard test module
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM}: apt-get install chromium (or set JOBTRAIL_CHROMIUM)"
        if os.environ.get("JOBTRAIL_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[LiveServer]:
    """One server for the module, with the demo workers: each test works as its own user."""
    server = LiveServer(make_settings(tmp_path_factory.mktemp("dashboard"), demo=True)).start()
    yield server
    server.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh profile per test: no cookie or stored token carries over. Afterwards: no
    uncaught script error and no Content-Security-Policy violation happened in it."""
    made = browser.new_context(viewport=DESKTOP)
    problems: list[str] = []
    made.on("weberror", lambda error: problems.append(f"uncaught: {error.error}"))
    made.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield made
    made.close()
    assert not problems


def sign_in(context: BrowserContext, server: LiveServer, sub: str, scopes: str, path: str = "/"):
    """Opens the page through the sign-in link, as `jobtrail serve --print-token` prints it."""
    page = context.new_page()
    page.goto(f"{server.url}{path}?token={server.token(sub, scopes)}")
    expect(page.locator("#account")).to_contain_text(f"Signed in as {sub}")
    return page


def row(page: Page, job_id: str):
    return page.locator(f'tr[data-job-id="{job_id}"]')
