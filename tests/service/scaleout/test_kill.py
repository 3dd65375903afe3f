"""One of two instances on one PostgreSQL database killed (kill -9): in the middle of a
transaction, nothing of it stays (events and read rows roll back together), every write that
got a 2xx is stored, and the other instance goes on; in the middle of a stream, its subscriber
resumes on the other instance with Last-Event-ID, without a gap or a repeat. Or frozen with the
events table's lock: the others wait seconds, not for ever. Each test kills (or freezes) an
instance started for it, beside the package's pair."""

from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests import instances
from tests.support import call, claim, create, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


class Load:
    """Workers and clients writing through one instance each; on a connection error (their
    instance died) they note the unanswered write and go on through the other one."""

    def __init__(self, served: instances.Instances, fallback: instances.Instance) -> None:
        self.served = served
        self.fallback = fallback
        self.stop = threading.Event()
        self.acknowledged: dict[str, list[object]] = {}
        self.unanswered: dict[str, list[object]] = {}

    def acked(self, name: str) -> int:
        return len(self.acknowledged.get(name, ()))

    def report(self, name: str, instance: instances.Instance, claimed: dict) -> None:
        """Progress on a job of its own, `completed` counting up, on one lease."""
        self._run(name, instance, "w", "worker", lambda c, n: self._progress(c, claimed, n))

    def create(self, name: str, instance: instances.Instance) -> None:
        self._run(name, instance, "alice", "jobs:read jobs:write", self._create)

    @staticmethod
    def _progress(client: httpx.Client, claimed: dict, n: int) -> object:
        answer = call(client, claimed, "progress", {"completed": n})
        assert answer.status_code == 200, answer.text
        return n

    @staticmethod
    def _create(client: httpx.Client, n: int) -> object:
        return create(client, type="kill.created", payload=n)["id"]

    def _run(self, name, instance, sub, scopes, write) -> None:
        acknowledged = self.acknowledged.setdefault(name, [])
        unanswered = self.unanswered.setdefault(name, [])
        client = self.served.client(instance, sub, scopes)
        try:
            for n in instances.until(60):
                if self.stop.is_set():
                    return
                try:
                    acknowledged.append(write(client, n))
                except httpx.TransportError:  # its instance died: no answer, on to the other
                    unanswered.append(n)
                    client.close()
                    client = self.served.client(self.fallback, sub, scopes)
        finally:
            client.close()


def test_a_kill_mid_transaction_keeps_every_acknowledged_write_and_nothing_half_done(pair, victim):
    """Four writers (progress and creates, two per instance) run through A (the victim)
    and B while A's writer is held in the middle of a transaction: the test holds a row lock
    on one job's read row, so A's transaction recording that job's progress stops while it
    writes the read rows, after inserting the events (it holds the events table's lock and a
    row lock on it). A is then killed. PostgreSQL rolls that transaction back whole, B's
    writes go on, the job's worker carries on through B on the same lease, every write that
    got a 2xx is stored, and `jobtrail audit verify` finds the read models equal to the fold
    of the events."""
    served, a, b = pair, victim, pair.all[1]
    url = served.database_url
    load = Load(served, fallback=b)
    with (
        served.client(a, "alice") as alice,
        served.client(a, "w", "worker") as worker_a,
        served.client(b, "w", "worker") as worker_b,
        served.client(b, "root", "admin") as admin,
        ThreadPoolExecutor(5) as pool,
    ):
        claims = {}
        for name, worker in (("stuck", worker_a), ("on A", worker_a), ("on B", worker_b)):
            create(alice, type=f"kill.{name[-1].lower()}")
            claims[name] = claim(worker, [f"kill.{name[-1].lower()}"], lease=300)
        stuck = claims["stuck"]
        writers = [
            pool.submit(load.report, name, instance, claims[name])
            for name, instance in (("on A", a), ("on B", b))
        ]
        writers += [
            pool.submit(load.create, name, instance)
            for name, instance in (("creates on A", a), ("creates on B", b))
        ]
        try:
            wait_for(
                lambda: len(load.acknowledged) == 4 and min(map(load.acked, load.acknowledged)) >= 3
            )
            with instances.connect(url) as db:  # the stuck job's read row, locked
                db.execute("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE", (stuck["job"]["id"],))
                held = pool.submit(call, worker_a, stuck, "progress", {"completed": 999})
                (pid,) = instances.wait_until_waiting(url, 1, "UPDATE jobs")
                assert {"ExclusiveLock", "RowExclusiveLock"} <= instances.events_table_locks(
                    url, pid
                )
                a.kill()
                db.rollback()
            with pytest.raises(httpx.TransportError):
                held.result(timeout=30)
            wait_for(lambda: instances.session_gone(url, pid))  # its transaction rolled back
            before = {name: load.acked(name) for name in load.acknowledged}
            wait_for(lambda: all(load.acked(n) >= before[n] + 3 for n in before))  # B goes on
        finally:
            load.stop.set()
            for writer in writers:
                writer.result(timeout=60)
        after = call(worker_b, stuck, "progress", {"completed": 1000})  # the same lease, on B
        assert after.status_code == 200, after.text
        events = instances.events_after(admin, 0, f"/api/v1/jobs/{stuck['job']['id']}/events")
        assert [(e["type"], e["data"].get("completed")) for e in events][2:] == [("progress", 1000)]
        assert admin.get(f"/api/v1/jobs/{stuck['job']['id']}").json()["version"] == 3
        for name in ("on A", "on B"):
            job_id = claims[name]["job"]["id"]
            path = f"/api/v1/jobs/{job_id}/events"
            stored = [e["data"]["completed"] for e in instances.events_after(admin, 0, path)[2:]]
            assert set(load.acknowledged[name]) <= set(stored)
            assert set(stored) <= set(load.acknowledged[name]) | set(load.unanswered[name])
        created = {e["job_id"] for e in instances.events_after(admin, 0) if e["type"] == "created"}
        creators = ("creates on A", "creates on B")
        for name in creators:
            assert set(load.acknowledged[name]) <= created
        made = admin.get("/api/v1/jobs", params={"type": "kill.created"}).json()["total"]
        acknowledged = sum(load.acked(name) for name in creators)
        assert acknowledged <= made <= acknowledged + sum(len(load.unanswered[n]) for n in creators)
    assert load.unanswered["on A"] and not load.unanswered["on B"]  # A's died with it
    verified = served.audit_verify()
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "the read models equal the fold of the events" in verified.stdout


def test_subscribers_on_two_instances_get_every_event_once_and_one_resumes_after_a_kill(
    pair, victim
):
    """A job created on A (the victim), claimed through B, its progress posted to A and B in
    turn: a subscriber to its stream on A and one on B each get every event once, in order.
    A is killed (kill -9) while a worker posts progress through B: A's subscriber, once its
    connection drops and more events have come, reconnects to B with Last-Event-ID and gets
    the events it missed and the rest, to `end`, without a gap or a repeat."""
    a, b = victim, pair.all[1]
    with (
        pair.client(a, "alice") as alice,
        pair.client(a, "w", "worker") as worker_a,
        pair.client(b, "w", "worker") as worker_b,
        ThreadPoolExecutor(1) as pool,
    ):
        job = create(alice, type="kill.stream")
        claimed = claim(worker_b, ["kill.stream"], lease=300)
        assert claimed is not None and claimed["job"]["id"] == job["id"]
        path, token = f"/api/v1/jobs/{job['id']}/events", pair.token("alice")
        on_a = instances.Follower([a.url, b.url], path, token).start()
        on_b = instances.Follower([b.url], path, token).start()
        wait_for(lambda: len(on_a.ids) >= 2 and len(on_b.ids) >= 2)  # created, started: live
        for n, worker in enumerate([worker_a, worker_b] * 3):
            assert call(worker, claimed, "progress", {"completed": n}).status_code == 200
        wait_for(lambda: len(on_a.ids) >= 8 and len(on_b.ids) >= 8)

        killed = threading.Event()

        def report() -> None:  # 5 reports before the kill, 15 after it
            for n in range(6, 26):
                if n == 11:
                    assert killed.wait(30)
                assert call(worker_b, claimed, "progress", {"completed": n}).status_code == 200

        reporting = pool.submit(report)
        wait_for(lambda: len(on_b.ids) >= 13)  # the 5 reports reached B's subscriber
        a.kill()  # mid-stream: its subscriber may or may not have had the last few
        killed.set()
        assert on_a.dropped.wait(30)
        reporting.result(timeout=60)
        on_a.resume.set()
        assert call(worker_b, claimed, "succeed", {"result": "done"}).status_code == 200
        on_a.join()
        on_b.join()
    with pair.client(b, "alice") as alice_b:
        stored = [event["id"] for event in instances.events_after(alice_b, 0, path)]
    assert len(stored) == 2 + 26 + 1
    assert on_a.ids == on_b.ids == stored
    assert on_a.ended and on_b.ended
    # It had the first 8 at least, and none of the 16 that came after the kill: B sent those.
    assert 7 <= stored.index(on_a.resumed_after[0]) <= 12


def test_an_instance_frozen_in_a_transaction_holds_up_the_others_only_for_seconds(pair, victim):
    """Time is the scenario (about 5 s): A (the victim) is frozen (SIGSTOP: a hung process, a
    paused VM) just as its writer's transaction has taken the events table's lock. PostgreSQL
    ends a transaction idle for 5 s (the store's idle_in_transaction_session_timeout), so B's
    write, queued behind it, is answered 201, not 503 after its 10 s wait. A, thawed, answers
    its held write 503 (nothing of it is stored), then writes again."""
    a, b = victim, pair.all[1]
    url = pair.database_url
    with (
        pair.client(a, "frozen") as on_a,
        pair.client(b, "frozen") as on_b,
        ThreadPoolExecutor(1) as pool,
    ):
        with instances.events_table_locked(url):
            held = pool.submit(on_a.post, "/api/v1/jobs", json={"type": "frozen.held"})
            (pid,) = instances.wait_until_waiting(url, 1, "LOCK TABLE")
            a.process.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: "ExclusiveLock" in instances.events_table_locks(url, pid))
            create(on_b, type="frozen.b")  # queued behind A's transaction, until it is ended
            wait_for(lambda: instances.session_gone(url, pid))
        finally:
            a.process.send_signal(signal.SIGCONT)
        answer = held.result(timeout=30)
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "unavailable"
        create(on_a, type="frozen.a")
        for job_type, total in (("frozen.held", 0), ("frozen.a", 1), ("frozen.b", 1)):
            listed = on_b.get("/api/v1/jobs", params={"type": job_type})
            assert listed.json()["total"] == total
    assert "Traceback" not in a.log.read_text(errors="replace")
