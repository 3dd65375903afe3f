"""The jobs page in Chromium: it lists the user's jobs, and follows the global event stream."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import expect

from tests.service.dashboard.conftest import DESKTOP, PHONE, row, sign_in
from tests.support import LiveServer, create, make_settings

DOCS = Path(__file__).parents[3] / "docs"


def test_the_page_lists_the_users_jobs_with_totals(context, live):
    with live.client("lister") as client:
        jobs = [create(client, name=f"Render {n}", category="video") for n in range(3)]
        client.post(f"/api/v1/jobs/{jobs[0]['id']}/cancel")
    page = sign_in(context, live, "lister", "jobs:read jobs:write")
    for job in jobs:
        expect(row(page, job["id"])).to_contain_text(job["name"])
    expect(row(page, jobs[0]["id"])).to_have_attribute("data-status", "cancelled")
    expect(page.locator('.total[data-status="pending"] .count')).to_have_text("2")
    expect(page.locator('.total[data-status="cancelled"] .count')).to_have_text("1")
    expect(page.locator("th", has_text="Owner")).to_have_count(0)  # not an admin
    # A filter narrows the list (and goes into the address, for reload and back).
    page.locator('.total[data-status="cancelled"]').click()
    expect(page.locator("tbody tr")).to_have_count(1)
    assert "status=cancelled" in page.url


def test_a_job_created_through_the_api_appears_without_reload(context, live):
    page = sign_in(context, live, "watcher", "jobs:read jobs:write")
    expect(page.locator(".live")).to_have_attribute("data-state", "live")
    expect(page.get_by_text("No jobs match.")).to_be_visible()
    page.evaluate("window.sameDocument = true")  # a reload would lose it
    with live.client("watcher") as client:
        job = create(client, name="Appears live")
    expect(row(page, job["id"])).to_contain_text("Appears live")
    expect(page.locator('.total[data-status="pending"] .count')).to_have_text("1")
    assert page.evaluate("window.sameDocument") is True


def test_a_demo_jobs_progress_moves_to_100_and_it_succeeds_live(context, live):
    page = sign_in(context, live, "demo-user", "jobs:read jobs:write")
    expect(page.locator(".live")).to_have_attribute("data-state", "live")
    page.evaluate(
        """() => {  // every value the progress bars take, in order
        window.seen = [];
        new MutationObserver((changes) => changes.forEach((c) =>
            window.seen.push(c.target.getAttribute("aria-valuenow"))))
          .observe(document.body, {subtree: true, attributeFilter: ["aria-valuenow"]});
        }"""
    )
    with live.client("demo-user") as client:
        job = create(client, type="demo.count", name="Count", payload={"to": 5, "delay": 0.3})
    bar = row(page, job["id"]).get_by_role("progressbar")
    expect(row(page, job["id"])).to_have_attribute("data-status", "running")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(row(page, job["id"]).locator(".status")).to_have_text("succeeded")
    seen = [float(value) for value in page.evaluate("window.seen") if value is not None]
    assert any(0 < value < 100 for value in seen), seen  # it moved, not jumped
    assert seen == sorted(seen) and seen[-1] == 100


def test_another_users_jobs_never_show(context, live):
    page = sign_in(context, live, "alice-t", "jobs:read jobs:write")
    expect(page.locator(".live")).to_have_attribute("data-state", "live")
    with live.client("bob-t") as bob, live.client("alice-t") as alice:
        secret = create(bob, name="Bob's secret")
        bob.post(f"/api/v1/jobs/{secret['id']}/cancel")
        mine = create(alice, name="Alice's own")  # after bob's: once it shows, bob's had its turn
    expect(row(page, mine["id"])).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.get_by_text("Bob's secret")).to_have_count(0)
    expect(page.locator('.total[data-status="cancelled"] .count')).to_have_text("0")
    page.goto(f"{live.url}/jobs/{secret['id']}")
    expect(page.get_by_role("heading", name="Job not found")).to_be_visible()
    expect(page.get_by_text("Bob's secret")).to_have_count(0)


def test_screenshots_of_both_pages_at_desktop_and_phone_width(browser, tmp_path):
    """Pictures for the README, from a real run: JOBTRAIL_SCREENSHOTS=1 writes them to docs/.
    Their own server: an admin sees every job, and the other tests' jobs are no picture."""
    folder = DOCS if os.environ.get("JOBTRAIL_SCREENSHOTS") == "1" else tmp_path
    live = LiveServer(make_settings(tmp_path, demo=True)).start()
    try:
        _screenshots(browser, live, folder)
    finally:
        live.stop()


def _screenshots(browser, live, folder):
    with live.client("dev", "admin") as client:
        done = create(client, type="demo.count", name="Count to 8", payload={"to": 8, "delay": 0})
        create(client, type="demo.batch", name="Nightly batch", children=[
            {"type": "demo.count", "payload": {"to": 4, "delay": 0}} for _ in range(3)
        ])  # fmt: skip
        create(client, type="video.render", name="Intro video", category="export", priority="high")
        create(client, type="demo.fail", name="Fails on purpose", payload={"delay": 0})
    for name, viewport in (("", DESKTOP), ("-phone", PHONE)):
        context = browser.new_context(viewport=viewport)
        try:
            page = sign_in(context, live, "dev", "admin")
            expect(page.locator('tr[data-status="failed"]')).to_have_count(1)
            expect(row(page, done["id"])).to_have_attribute("data-status", "succeeded")
            page.screenshot(path=folder / f"dashboard-jobs{name}.png", full_page=True)
            page.goto(f"{live.url}/jobs/{done['id']}")
            expect(page.locator(".live")).to_have_attribute("data-state", "ended")
            page.screenshot(path=folder / f"dashboard-job{name}.png", full_page=True)
        finally:
            context.close()
