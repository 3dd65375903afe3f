"""Claiming over real HTTP: order, run_at, types, long polls, and exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests import support
from tests.support import LiveServer, claim, wait_for
from tests.support import create_for_worker as create

pytestmark = pytest.mark.backends("sqlite", "postgres")


@pytest.fixture
def worker(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client("host-1", "worker") as client:
        yield client


@pytest.mark.backends("sqlite")  # refused before the store is read
def test_claim_needs_the_worker_scope(alice: httpx.Client) -> None:
    response = alice.post("/api/v1/workers/claim", json={"types": ["t.a"]})
    assert response.status_code == 403


def test_nothing_due_answers_204(worker: httpx.Client) -> None:
    assert claim(worker, ["t.a"]) is None


def test_claim_starts_the_job_and_gives_a_lease(alice: httpx.Client, worker: httpx.Client) -> None:
    job = create(alice)
    claimed = claim(worker, ["t.a"])
    assert claimed is not None
    assert claimed["job"]["id"] == job["id"]
    assert claimed["job"]["status"] == "running"
    assert claimed["job"]["attempt"] == 1
    assert claimed["lease"]["token"]
    assert claimed["lease"]["expires_at"].endswith("Z")
    assert alice.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "running"
    assert claim(worker, ["t.a"]) is None


def test_claim_order_is_priority_then_oldest(alice: httpx.Client, worker: httpx.Client) -> None:
    low = create(alice, priority="low")
    normal_1 = create(alice)
    high = create(alice, priority="high")
    normal_2 = create(alice)
    order = [claim(worker, ["t.a"]) for _ in range(4)]
    assert [c["job"]["id"] for c in order if c] == [
        high["id"], normal_1["id"], normal_2["id"], low["id"]
    ]  # fmt: skip


def test_claim_takes_only_the_asked_types(alice: httpx.Client, worker: httpx.Client) -> None:
    create(alice, type="t.other")
    wanted = create(alice, type="t.b")
    claimed = claim(worker, ["t.b", "t.c"])
    assert claimed is not None and claimed["job"]["id"] == wanted["id"]
    assert claim(worker, ["t.b", "t.c"]) is None


def test_claim_skips_jobs_not_yet_due(alice: httpx.Client, worker: httpx.Client) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    create(alice, run_at=later.isoformat().replace("+00:00", "Z"))
    past = create(alice, run_at="2020-01-01T00:00:00.000Z")
    claimed = claim(worker, ["t.a"])
    assert claimed is not None and claimed["job"]["id"] == past["id"]
    assert claim(worker, ["t.a"]) is None


def test_long_poll_returns_when_a_job_is_created(
    server: LiveServer, alice: httpx.Client, worker: httpx.Client
) -> None:
    result: dict[str, object] = {}

    def wait() -> None:
        started = time.monotonic()
        result["claimed"] = claim(worker, ["t.a"], wait=10)
        result["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=wait)
    thread.start()
    claims = server.runtime.claims
    assert claims is not None
    wait_for(lambda: claims.waiting > 0)  # the claimer found nothing and waits
    job = create(alice)
    thread.join(timeout=15)
    claimed = result["claimed"]
    assert isinstance(claimed, dict) and claimed["job"]["id"] == job["id"]
    assert result["seconds"] < 3


def test_long_poll_wakes_when_a_scheduled_job_becomes_due(
    alice: httpx.Client, worker: httpx.Client
) -> None:
    due = datetime.now(UTC) + timedelta(seconds=1)
    job = create(alice, run_at=due.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    claimed = claim(worker, ["t.a"], wait=10)
    assert claimed is not None and claimed["job"]["id"] == job["id"]
    assert datetime.now(UTC) < due + timedelta(seconds=2)


def test_long_poll_gives_up_after_wait_seconds(worker: httpx.Client) -> None:
    started = time.monotonic()
    assert claim(worker, ["t.a"], wait=0.5) is None
    assert 0.4 < time.monotonic() - started < 3


@pytest.mark.backends("sqlite")  # refused before the store is read
@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-types"),
        pytest.param({"types": []}, id="empty-types"),
        pytest.param({"types": ["Bad Type"]}, id="bad-type"),
        pytest.param({"types": ["t.a"], "wait_seconds": 31}, id="wait-too-long"),
        pytest.param({"types": ["t.a"], "lease_seconds": 0}, id="lease-too-short"),
        pytest.param({"types": ["t.a"], "extra": 1}, id="unknown-field"),
    ],
)
def test_bad_claim_bodies_are_400(worker: httpx.Client, body: dict[str, object]) -> None:
    response = worker.post("/api/v1/workers/claim", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_concurrent_claimers_run_every_job_exactly_once(server: LiveServer) -> None:
    jobs = 500
    with server.client("alice") as alice:
        for _ in range(jobs):
            create(alice, type="t.race")
    claimed: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 60

    def work() -> None:
        with server.client("racer", "worker") as client:
            while time.monotonic() < deadline:
                got = claim(client, ["t.race"])
                if got is None:
                    return
                assert support.call(client, got, "succeed", {}).status_code == 200
                with lock:
                    claimed.append(got["job"]["id"])

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert len(claimed) == jobs
    assert len(set(claimed)) == jobs
    store = server.runtime.store

    table = support.events_table(server.settings)

    def count_started(c):
        c.execute(
            f"SELECT COUNT(*), COUNT(DISTINCT originator_id) FROM {table} WHERE topic LIKE ?",
            ("%Job.Started",),
        )
        return c.fetchone()

    started, distinct = store.read(count_started)
    assert (started, distinct) == (jobs, jobs)


def test_two_servers_on_one_database_never_both_claim_a_job(server: LiveServer) -> None:
    """Two writers (as two processes would be) race: the loser's conflict retries alone."""
    other = LiveServer(server.settings).start()
    try:
        jobs = 200
        with server.client("alice") as alice:
            for _ in range(jobs):
                create(alice, type="t.two")
        claimed: list[str] = []
        lock = threading.Lock()
        deadline = time.monotonic() + 60

        def work(live: LiveServer) -> None:
            with live.client("racer", "worker") as client:
                while time.monotonic() < deadline:
                    response = client.post(
                        "/api/v1/workers/claim", json={"types": ["t.two"], "lease_seconds": 60}
                    )
                    if response.status_code == 204:
                        return
                    if response.status_code == 409:  # the writer gave up after its retries
                        continue
                    assert response.status_code == 200, response.text
                    with lock:
                        claimed.append(response.json()["job"]["id"])

        threads = [threading.Thread(target=work, args=(live,)) for live in (server, other) * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
        assert len(claimed) == len(set(claimed)) == jobs
    finally:
        other.stop()


def test_claim_order_holds_across_the_asked_types(
    alice: httpx.Client, worker: httpx.Client
) -> None:
    old_a = create(alice, type="t.a")
    new_b = create(alice, type="t.b")
    high_b = create(alice, type="t.b", priority="high")
    order = [claim(worker, ["t.a", "t.b"]) for _ in range(3)]
    assert [c["job"]["id"] for c in order if c] == [high_b["id"], old_a["id"], new_b["id"]]
