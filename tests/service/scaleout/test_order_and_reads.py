"""Two instances on one PostgreSQL database, both writing: the global order of event ids is
commit order (a reader tailing "after the last id I saw" misses nothing), and every write is
read back at once, on the instance that answered it and on the other one, with read models
equal to the fold of the events (`jobtrail audit verify`)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import instances
from tests.support import call, claim, create

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_a_tailer_after_an_id_sees_every_event_once_in_order_while_both_instances_write(pair):
    """Six writers, three per instance, each creating jobs and renaming them, while a reader
    tails `GET /api/v1/events?after=<last id seen>` on A and B in turn. Every write transaction
    takes the events table's lock first, so ids are handed out in commit order: an id below
    one the tailer has seen can never commit later, and the tailer's list is the whole log."""
    a, b = pair.all[:2]
    start = instances.head(a)
    writing = threading.Event()
    done = threading.Event()
    seen: list[int] = []
    reads_with_news = 0

    def tail() -> None:
        nonlocal reads_with_news
        with pair.client(a, "root", "admin") as on_a, pair.client(b, "root", "admin") as on_b:
            for n in instances.until(60):
                finished = done.is_set()
                after = seen[-1] if seen else start
                page = (on_a, on_b)[n % 2].get("/api/v1/events", params={"after": after})
                assert page.status_code == 200, page.text
                ids = [event["id"] for event in page.json()["items"]]
                assert all(i > after for i in ids) and ids == sorted(set(ids))
                seen.extend(ids)
                reads_with_news += bool(ids) and not finished
                if finished and not page.json()["has_more"]:
                    return

    def write(instance: instances.Instance, n: int) -> int:
        writing.wait(10)
        acknowledged = 0
        with pair.client(instance, f"order-{n}") as client:
            for _ in range(3):
                job = create(client, type="order.t")
                acknowledged += 1
                for version in range(5):
                    renamed = client.patch(
                        f"/api/v1/jobs/{job['id']}", json={"name": f"v{version}"}
                    )
                    assert renamed.status_code == 200, renamed.text
                    acknowledged += 1
        return acknowledged

    tailer = threading.Thread(target=tail)
    tailer.start()
    try:
        with ThreadPoolExecutor(6) as pool:
            written = pool.map(write, [a, b] * 3, range(6))
            writing.set()
            assert sum(written) == 6 * 3 * 6
    finally:
        done.set()
        tailer.join(timeout=60)
    assert not tailer.is_alive()
    with pair.client(b, "root", "admin") as admin:
        listed = [event["id"] for event in instances.events_after(admin, start)]
    stored = instances.stored_ids(pair.database_url, start)
    assert len(stored) >= 6 * 3 * 6
    assert seen == listed == stored  # each once, in id order, none skipped
    assert reads_with_news > 1  # it tailed while they wrote, not only once at the end


def test_every_write_is_read_back_at_once_on_either_instance_under_load(pair):
    """Six clients at once, three on each instance, each writing and at once reading back on
    the instance that answered and on the other. One shared set of read models, written by
    whichever instance records the events, in the events' own transaction: once the 2xx is
    sent, every instance's reads show the write. Last, `jobtrail audit verify` finds every read
    row equal to the fold of the events (this package's other scenarios' too)."""
    a, b = pair.all[:2]

    def session(here: instances.Instance, there: instances.Instance, n: int) -> None:
        job_type = f"ryw.{n}"
        with (
            pair.client(here, f"ryw-{n}") as on_here,
            pair.client(there, f"ryw-{n}") as on_there,
            pair.client(here, "w", "worker") as worker,
        ):
            for count in range(1, 4):
                job = create(on_here, type=job_type)
                for client in (on_here, on_there):
                    got = client.get(f"/api/v1/jobs/{job['id']}")
                    assert got.status_code == 200, got.text
                    assert got.json()["version"] == 1
                patched = on_here.patch(
                    f"/api/v1/jobs/{job['id']}", json={"name": "renamed", "starred": True}
                )
                assert patched.status_code == 200, patched.text
                for client in (on_here, on_there):
                    got = client.get(f"/api/v1/jobs/{job['id']}").json()
                    assert (got["name"], got["version"]) == ("renamed", 2)
                    listed = client.get(
                        "/api/v1/jobs", params={"type": job_type, "starred": "true"}
                    )
                    assert listed.json()["total"] == count
                    page = client.get(f"/api/v1/jobs/{job['id']}/events").json()
                    assert page["items"][-1]["id"] == patched.json()["last_event_id"]
            claimed = claim(worker, [job_type], lease=300)
            assert claimed is not None
            reported = call(worker, claimed, "progress", {"percent": 50.0, "stage": "half"})
            assert reported.status_code == 200, reported.text
            for client in (on_here, on_there):
                got = client.get(f"/api/v1/jobs/{claimed['job']['id']}").json()
                assert (got["status"], got["progress"]["percent"]) == ("running", 50.0)
            assert call(worker, claimed, "succeed", {"result": n}).status_code == 200
            for client in (on_there, on_here):
                got = client.get(f"/api/v1/jobs/{claimed['job']['id']}").json()
                assert (got["status"], got["result"]) == ("succeeded", n)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(session, [a, b] * 3, [b, a] * 3, range(6)))
    verified = pair.audit_verify()
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "the read models equal the fold of the events" in verified.stdout


def test_one_idempotency_key_sent_to_both_instances_at_once_makes_one_job(pair):
    """The same create with the same Idempotency-Key, through A and B at the same moment, three
    times over: each time one job, one 201 and one replay (200) of that same job."""
    a, b = pair.all[:2]
    start = threading.Barrier(2)

    def send(instance: instances.Instance, key: str) -> tuple[int, str]:
        with pair.client(instance, "keys") as client:
            start.wait(10)
            answer = client.post(
                "/api/v1/jobs", json={"type": "keys.t"}, headers={"Idempotency-Key": key}
            )
        return answer.status_code, answer.json()["id"]

    with ThreadPoolExecutor(2) as pool:
        for n in range(3):
            answers = sorted(pool.map(send, [a, b], [f"k{n}"] * 2))
            assert [status for status, _ in answers] == [200, 201]
            assert answers[0][1] == answers[1][1]
    with pair.client(b, "keys") as client:
        assert client.get("/api/v1/jobs", params={"type": "keys.t"}).json()["total"] == 3
