"""The job page in Chromium: its timeline, live across a server restart; its buttons; a batch's
children; the job as of an event."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.service.dashboard.conftest import sign_in
from tests.support import (
    LiveServer,
    call,
    claim,
    create,
    create_for_worker,
    free_port,
    make_settings,
)

USER = "jobs:read jobs:write"


# Counts the EventSources the page opens: one means the browser's own reconnection (with
# Last-Event-ID) carried the stream across the restart, not the page's fallback.
OPENED_STREAMS = """
window.openedStreams = 0;
const Original = window.EventSource;
window.EventSource = class extends Original {
  constructor(...args) { super(...args); window.openedStreams += 1; }
};
"""


def _event_ids(client, job_id: str) -> list[int]:
    ids, after = [], 0
    while True:
        page = client.get(f"/api/v1/jobs/{job_id}/events", params={"after": after}).json()
        ids += [event["id"] for event in page["items"]]
        if not page["has_more"]:
            return ids
        after = page["next_after"]


def _timeline(page) -> list[int]:
    return [int(i) for i in page.locator(".timeline li").evaluate_all(
        "items => items.map(item => item.dataset.eventId)")]  # fmt: skip


def test_the_timeline_shows_every_event_once_in_order_across_a_server_restart(context, tmp_path):
    server = LiveServer(make_settings(tmp_path), port=free_port()).start()  # same file, same port
    try:
        with server.client("tl") as client, server.client("w", "worker") as worker:
            job = create_for_worker(client, name="Across a restart")
            context.add_init_script(OPENED_STREAMS)
            page = sign_in(context, server, "tl", USER, f"/jobs/{job['id']}")
            claimed = claim(worker, ["t.a"])
            for n in range(1, 4):
                call(worker, claimed, "progress", {"percent": n * 10, "stage": "before"})
                call(worker, claimed, "logs", {"message": f"before {n}", "level": "warning"})
            live = page.locator(".live")
            expect(page.locator(".timeline li")).to_have_count(8)  # created, started, 6 more
            server.stop()
            expect(live).to_have_attribute("data-state", "reconnecting")
            server.start()
        # New connections after the restart; written before the page reconnects (2 s retry).
        with server.client("tl") as client, server.client("w", "worker") as worker:
            for n in range(1, 4):
                call(worker, claimed, "progress", {"percent": 50 + n * 10, "stage": "after"})
                call(worker, claimed, "logs", {"message": f"after {n}", "level": "error"})
            expect(live).to_have_attribute("data-state", "live")
            call(worker, claimed, "logs", {"message": "once live again", "level": "success"})
            call(worker, claimed, "succeed", {"result": {"frames": 3}})
            expect(live).to_have_attribute("data-state", "ended")
            expected = _event_ids(client, job["id"])
        assert _timeline(page) == expected  # every event, in order, once
        assert page.evaluate("window.openedStreams") == 1  # EventSource resumed it by itself
        assert len(expected) == 16
        expect(page.locator(".heading .status")).to_have_text("succeeded")
        expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "80")
        expect(page.locator(".level-error")).to_have_count(3)  # log lines coloured by level
        expect(page.locator(".doc", has_text="Result")).to_contain_text('"frames": 3')
    finally:
        server.stop()


def test_cancel_star_and_replay_from_the_page(context, live):
    with live.client("clicker") as client:
        job = create(client, name="Press my buttons", payload={"n": 1})
        page = sign_in(context, live, "clicker", USER, f"/jobs/{job['id']}")
        outcome = page.locator(".outcome")
        page.get_by_role("button", name="Cancel").click()
        expect(outcome).to_have_text("Cancelled.")
        assert client.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "cancelled"
        expect(page.get_by_role("button", name="Cancel")).to_be_disabled()
        expect(page.locator(".timeline li").last).to_have_attribute("data-type", "cancelled")
        page.get_by_role("button", name="Star").click()
        expect(outcome).to_have_text("Starred.")
        expect(page.get_by_role("button", name="Starred")).to_have_attribute("aria-pressed", "true")
        assert client.get(f"/api/v1/jobs/{job['id']}").json()["starred"] is True
        page.get_by_role("button", name="Replay").click()
        expect(outcome).to_contain_text("Replayed as job ")
        copy_id = outcome.get_by_role("link").get_attribute("href").rsplit("/", 1)[1]
        assert client.get(f"/api/v1/jobs/{copy_id}").json()["replayed_from"] == job["id"]
        page.get_by_role("button", name="Delete").click()
        page.get_by_role("button", name="Confirm delete").click()
        expect(outcome).to_contain_text("Deleted.")
        expect(page.locator(".heading .status")).to_have_text("deleted")
        assert client.get(f"/api/v1/jobs/{job['id']}").status_code == 404


def test_a_refused_action_shows_why_and_changes_nothing(context, live):
    with live.client("reader") as client:
        job = create(client, name="Read only")
        page = sign_in(context, live, "reader", "jobs:read", f"/jobs/{job['id']}")
        page.get_by_role("button", name="Cancel").click()
        expect(page.locator(".outcome")).to_have_text(
            "Failed: The token lacks the 'jobs:write' scope."
        )
        assert client.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "pending"


def test_the_job_as_it_was_after_an_event(context, live):
    with live.client("traveller") as client, live.client("w", "worker") as worker:
        job = create_for_worker(client, name="Time travel")
        claimed = claim(worker, ["t.a"])
        call(worker, claimed, "progress", {"percent": 25, "stage": "first"})
        call(worker, claimed, "progress", {"percent": 75, "stage": "second"})
        page = sign_in(context, live, "traveller", USER, f"/jobs/{job['id']}")
        page.locator('.timeline li[data-seq="3"]').get_by_role("button").click()
        panel = page.locator(".as-of-panel")
        expect(panel).to_contain_text("As it was after event #3 (progress)")
        expect(panel.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "25")
        expect(page.locator(".progress-block").get_by_role("progressbar")).to_have_attribute(
            "aria-valuenow", "75"
        )
        panel.get_by_role("button", name="Back to live").click()
        expect(panel).to_be_hidden()


def test_a_batch_lists_its_children_with_their_progress(context, live):
    with live.client("batcher") as client:
        children = [{"type": "demo.count", "payload": {"to": 3, "delay": 0.1}} for _ in range(2)]
        parent = create(client, type="demo.batch", name="A batch", children=children)
        page = sign_in(context, live, "batcher", USER, f"/jobs/{parent['id']}")
        rows = page.locator(".children tbody tr")
        expect(rows).to_have_count(2)
        for index in range(2):
            expect(rows.nth(index).get_by_role("progressbar")).to_have_attribute(
                "aria-valuenow", "100"
            )
        expect(page.locator(".heading .status")).to_have_text("succeeded")
