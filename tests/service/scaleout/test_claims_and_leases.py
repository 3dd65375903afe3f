"""Workers talking to two instances on one PostgreSQL database: each job claimed exactly once,
a long-polling claimer on one instance woken by a job created or retried on the other, and
leases, cancels and the reaper correct whichever instance a worker talks to (no instance
answers from a stale copy of a job or of a lease)."""

from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import instances
from tests.support import call, claim, create, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_each_job_is_claimed_exactly_once_by_claimers_on_both_instances(pair):
    """30 jobs created through both instances while 6 claimers, 3 on each, long-poll for them:
    every job is claimed, none twice, each has one `started` event."""
    a, b = pair.all[:2]
    created: list[str] = []
    creating = threading.Event()

    def make(instance: instances.Instance, n: int) -> None:
        with pair.client(instance, "claims") as client:
            for _ in range(10):
                created.append(create(client, type="once.t", payload=n)["id"])

    def take(instance: instances.Instance) -> list[str]:
        taken = []
        with pair.client(instance, "w", "worker") as worker:
            for _ in instances.until(60):
                finished = not creating.is_set()
                claimed = claim(worker, ["once.t"], lease=300, wait=1)
                if claimed is not None:
                    taken.append(claimed["job"]["id"])
                elif finished:
                    return taken
        return taken

    creating.set()
    with ThreadPoolExecutor(9) as pool:
        claimers = [pool.submit(take, instance) for instance in [a, b] * 3]
        list(pool.map(make, [a, b, a], range(3)))
        creating.clear()
        claims = collections.Counter(job for c in claimers for job in c.result())
    assert len(created) == 30
    assert set(claims) == set(created)
    assert max(claims.values()) == 1
    with pair.client(a, "root", "admin") as admin:
        started = [
            e["job_id"]
            for e in instances.events_after(admin, 0)
            if e["type"] == "started" and e["job_id"] in claims
        ]
    assert sorted(started) == sorted(created)


def test_a_claimer_long_polling_on_b_gets_a_job_created_or_retried_on_a(pair):
    """The test holds the events table's lock while B's claim and then A's write queue for it:
    PostgreSQL grants them in that order, so B's claimer has looked, found nothing and is
    waiting when A's write commits. It must then get the job: first one A created, then the
    same job once a worker's `fail` through A has scheduled its retry (wait_seconds is far
    longer than the test needs; how fast it wakes is not asserted)."""
    a, b = pair.all[:2]
    url = pair.database_url

    def claim_on_b_while(write):
        """B's long-polling claim, queued before `write()` on A; both answers."""
        with instances.events_table_locked(url):
            waiting = pool.submit(claim, worker_b, ["wake.t"], lease=300, wait=20)
            instances.wait_until_waiting(url, 1, "LOCK TABLE")
            written = pool.submit(write)
            instances.wait_until_waiting(url, 2, "LOCK TABLE")
        return waiting.result(timeout=40), written.result(timeout=30)

    with (
        pair.client(a, "alice") as alice,
        pair.client(a, "w", "worker") as worker_a,
        pair.client(b, "w", "worker") as worker_b,
        ThreadPoolExecutor(2) as pool,
    ):
        first, job = claim_on_b_while(lambda: create(alice, type="wake.t", max_attempts=2))
        assert first is not None and first["job"]["id"] == job["id"]
        error = {"error": {"message": "try again"}}
        second, failed = claim_on_b_while(lambda: call(worker_a, first, "fail", error))
    assert failed.status_code == 200, failed.text
    assert second is not None and second["job"]["id"] == job["id"]
    assert second["job"]["attempt"] == 2


def test_a_lease_serves_calls_through_either_instance_and_a_cancel_reaches_both(pair):
    """One lease, its calls through A and B in turn: each answers from the job as it is, not
    from a copy it cached (a heartbeat records no event that a version check could refuse):
    after a cancel recorded through A, B's heartbeat answers `cancel_requested: true`."""
    a, b = pair.all[:2]
    with (
        pair.client(a, "alice") as alice,
        pair.client(a, "w", "worker") as worker_a,
        pair.client(b, "w", "worker") as worker_b,
    ):
        job = create(alice, type="lease.both")
        claimed = claim(worker_b, ["lease.both"], lease=300)
        assert claimed is not None and claimed["job"]["id"] == job["id"]
        for n, worker in enumerate([worker_a, worker_b] * 4):  # both now hold the job cached
            answer = call(worker, claimed, "progress", {"completed": n})
            assert answer.status_code == 200, answer.text
            assert answer.json()["cancel_requested"] is False
        assert alice.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 200
        for worker in (worker_b, worker_a):
            answer = call(worker, claimed, "heartbeat")
            assert answer.status_code == 200, answer.text
            assert answer.json()["cancel_requested"] is True
        ended = call(worker_b, claimed, "cancelled")
        assert ended.status_code == 200, ended.text
        for instance in (a, b):
            with pair.client(instance, "alice") as client:
                seen = client.get(f"/api/v1/jobs/{job['id']}").json()
            assert (seen["status"], seen["version"]) == ("cancelled", 2 + 8 + 2)
            assert seen["progress"]["completed"] == 7


def test_a_lapsed_lease_is_expired_once_by_one_of_the_instances(pair):
    """Time is the scenario: a 1 s lease that no one renews. Both instances run a reaper; it
    lapses, and exactly one of them records its expiry: one `retry_scheduled`, counted once
    in the two instances' `jobtrail_leases_expired_total` together."""
    a, b = pair.all[:2]
    expired = "jobtrail_leases_expired_total"
    before = a.metric(expired) + b.metric(expired)
    with pair.client(a, "alice") as alice, pair.client(b, "w", "worker") as worker:
        job = create(alice, type="lease.lapse", max_attempts=3)
        claimed = claim(worker, ["lease.lapse"], lease=1)
        assert claimed is not None and claimed["job"]["id"] == job["id"]
        wait_for(lambda: a.metric(expired) + b.metric(expired) > before, timeout=30)
        events = instances.events_after(alice, 0, f"/api/v1/jobs/{job['id']}/events")
        seen = alice.get(f"/api/v1/jobs/{job['id']}").json()
    assert [e["type"] for e in events] == ["created", "started", "retry_scheduled"]
    assert events[-1]["data"]["error"]["code"] == "lease_expired"
    assert (seen["status"], seen["attempt"]) == ("pending", 1)
    assert a.metric(expired) + b.metric(expired) == before + 1


def test_a_lease_renewed_only_through_b_is_not_lost_on_a(pair):
    """Time is the scenario: a 2 s lease, claimed and renewed once through A, then renewed
    only through B for 2.5 s (past the expiry A knows), well within each lease. A has seen
    none of B's renewals (they are not events): neither its heartbeat nor its reaper may call
    the lease lost."""
    a, b = pair.all[:2]
    with (
        pair.client(a, "alice") as alice,
        pair.client(a, "w", "worker") as worker_a,
        pair.client(b, "w", "worker") as worker_b,
    ):
        job = create(alice, type="lease.renew")
        claimed = claim(worker_a, ["lease.renew"], lease=2)
        assert claimed is not None and claimed["job"]["id"] == job["id"]
        known_to_a = call(worker_a, claimed, "heartbeat").json()["lease_expires_at"]
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:  # a worker renewing every 0.3 s, through B only
            answer = call(worker_b, claimed, "heartbeat")
            assert answer.status_code == 200, answer.text
            time.sleep(0.3)
        renewed = call(worker_a, claimed, "heartbeat")
        assert renewed.status_code == 200, renewed.text  # not 409 lease_lost
        assert renewed.json()["lease_expires_at"] > known_to_a
        assert call(worker_a, claimed, "succeed", {"result": 1}).status_code == 200
        events = instances.events_after(alice, 0, f"/api/v1/jobs/{job['id']}/events")
    assert [e["type"] for e in events] == ["created", "started", "succeeded"]
