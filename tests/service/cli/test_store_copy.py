"""`jobtrail store copy`: an SQLite store written by the real service, copied into an empty
PostgreSQL database, then served from there: the same jobs, the same events under the same
ids, the same pages and cursors, leases that hold (renewals included), idempotent re-creates
that replay, new events after the old ids; the chains go on and verify. A non-empty target and
a source that does not verify are refused, and nothing is written."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from tests.service.cli.test_audit import cli, seed
from tests.service.cli.test_audit_tamper import Forger
from tests.support import LiveServer, call, claim, create, make_settings, wait_for

pytestmark = pytest.mark.postgres

PROGRESS_EVENTS = 120  # past one snapshot interval (100): the copy takes a snapshot anew


def copy(settings, target_url):
    return cli(settings, "store", "copy", str(settings.sqlite_path), "--to", target_url)


def events_in(url):
    with psycopg.connect(url) as db:
        return db.execute("SELECT count(*) FROM jobtrail_events").fetchone()[0]


def leases_of(settings):
    query = "SELECT job_id, token, seconds, expires_at FROM leases ORDER BY job_id"
    if settings.is_postgres:
        with psycopg.connect(settings.database_url) as db:
            return db.execute(query).fetchall()
    with sqlite3.connect(settings.sqlite_path) as db:
        return db.execute(query).fetchall()


def build_source(server):
    """Jobs in every state, a batch, a live lease renewed since its claim, idempotency keys,
    a deleted job, a long job: their ids, and the key's request body."""
    jobs = {}
    with server.client("alice") as alice, server.client("w", "worker") as worker:
        keyed = {"type": "t.keyed", "name": "keyed", "payload": {"n": 1}}
        response = alice.post("/api/v1/jobs", json=keyed, headers={"Idempotency-Key": "k-1"})
        assert response.status_code == 201, response.text
        jobs["keyed"] = response.json()["id"]
        children = [{"type": "t.child", "name": f"child {i}"} for i in range(3)]
        jobs["batch"] = create(alice, type="t.parent", children=children)["id"]
        for kind in ("run", "ok", "fail", "retry"):
            jobs[kind] = create(alice, type=f"t.{kind}", max_attempts=3)["id"]
        jobs["next"] = create(alice, type="t.next", priority="high")["id"]
        jobs["cancelled"] = create(alice, type="t.idle")["id"]
        assert alice.post(f"/api/v1/jobs/{jobs['cancelled']}/cancel", json={}).status_code == 200
        jobs["deleted"] = create(alice, type="t.idle")["id"]
        assert alice.delete(f"/api/v1/jobs/{jobs['deleted']}").status_code == 204
        starred = alice.patch(f"/api/v1/jobs/{jobs['keyed']}", json={"starred": True})
        assert starred.status_code == 200
        running = claim(worker, ["t.run"], lease=3600)
        for n in range(PROGRESS_EVENTS):
            assert call(worker, running, "progress", {"percent": n / 2}).status_code == 200
        first = running["lease"]["expires_at"]
        # A renewal is no event: only the leases table holds it (here: a later expiry).
        wait_for(lambda: call(worker, running, "heartbeat").json()["lease_expires_at"] > first)
        done = call(worker, claim(worker, ["t.ok"]), "succeed", {"result": {"ok": 1}})
        assert done.status_code == 200
        failure = {"error": {"message": "no"}, "retry": False}
        assert call(worker, claim(worker, ["t.fail"]), "fail", failure).status_code == 200
        retried = call(worker, claim(worker, ["t.retry"]), "fail", {"error": {"message": "again"}})
        assert retried.json()["status"] == "pending" and retried.json()["run_at"]  # a retry
    return jobs, keyed, running


def seen_through_http(server, jobs):
    """What the API shows of the store: every job, its events, pages, the global log."""
    seen = {}
    with server.client("alice") as alice, server.client("root", "admin") as admin:
        for name, job_id in jobs.items():
            job = alice.get(f"/api/v1/jobs/{job_id}")
            seen[name] = (job.status_code, job.json())
            events = admin.get(f"/api/v1/jobs/{job_id}/events", params={"limit": 1000})
            seen[f"{name} events"] = events.json()
        seen["run as of 50"] = alice.get(f"/api/v1/jobs/{jobs['run']}", params={"as_of": 50}).json()
        listing = {"limit": 3, "sort": "updated_at"}
        page = alice.get("/api/v1/jobs", params=listing).json()
        seen["page"] = page
        listing["cursor"] = page["next_cursor"]  # the same on both: the source's works on the copy
        seen["next page"] = alice.get("/api/v1/jobs", params=listing).json()
        seen["log"] = admin.get("/api/v1/events", params={"after": 0, "limit": 1000}).json()
    return seen


def test_a_store_written_by_the_service_is_served_the_same_from_its_postgres_copy(tmp_path, pg_url):
    source = make_settings(tmp_path)
    server = LiveServer(source).start()
    try:
        jobs, keyed, running = build_source(server)
        before = seen_through_http(server, jobs)
    finally:
        server.stop()
    last_id = before["log"]["items"][-1]["id"]
    source_head = cli(source, "audit", "verify").stdout.splitlines()[1].split()[1]

    result = copy(source, pg_url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == f"source: {last_id} events, head: {source_head}"
    assert lines[2] == f"target: {last_id} events, head: {source_head}"  # the same chain
    assert "verifying the target" in result.stderr and "copied " in result.stderr
    target = make_settings(tmp_path, database_url=pg_url)
    assert leases_of(target) == leases_of(source) != []  # the renewal included
    with psycopg.connect(pg_url) as db:
        assert db.execute("SELECT count(*) FROM jobtrail_snapshots").fetchone()[0] == 1

    assert before["deleted"][0] == 404 and before["next page"]["items"]
    assert before["run as of 50"]["version"] == 50
    server = LiveServer(target).start()
    try:
        assert seen_through_http(server, jobs) == before
        with server.client("alice") as alice, server.client("w", "worker") as worker:
            again = alice.post("/api/v1/jobs", json=keyed, headers={"Idempotency-Key": "k-1"})
            assert again.status_code == 200 and again.json()["id"] == jobs["keyed"]
            assert again.headers["Idempotent-Replayed"] == "true"
            changed = {**keyed, "name": "other"}
            other = alice.post("/api/v1/jobs", json=changed, headers={"Idempotency-Key": "k-1"})
            assert other.status_code == 409
            assert call(worker, running, "heartbeat").status_code == 200  # the lease holds
            assert call(worker, running, "succeed", {"result": None}).status_code == 200
            claimed = claim(worker, ["t.next"])
            assert claimed["job"]["id"] == jobs["next"]
            assert claimed["job"]["last_event_id"] > last_id  # ids go on after the copied ones
    finally:
        server.stop()
    verified = cli(target, "audit", "verify")  # the chains go on from the copied head
    assert verified.exit_code == 0, verified.output
    assert cli(target, "audit", "verify", "--expect-head", source_head).exit_code == 0


def test_a_target_that_holds_events_is_refused_and_left_as_it_was(tmp_path, pg_url):
    source = make_settings(tmp_path)
    seed(source, 2)
    assert copy(source, pg_url).exit_code == 0
    refused = copy(source, pg_url)
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert refused.stderr.splitlines()[-1] == (
        "Error: the target holds events already (up to id 20): copy only into an empty "
        "database (nothing was copied)"
    )
    assert events_in(pg_url) == 20


def test_a_source_that_does_not_verify_is_refused_with_its_findings(tmp_path, pg_url):
    source = make_settings(tmp_path)
    ids = seed(source, 2)
    forger = Forger(source)
    forger.rewrite_state(forger.rowid(ids[1], 4), "10.0", "90.0")
    refused = copy(source, pg_url)
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    errors = refused.stderr.splitlines()
    assert any(line.startswith(f"chain job {ids[1]} version 4 ") for line in errors)
    assert errors[-1].startswith("Error: the source does not verify (")
    assert events_in(pg_url) == 0


def test_bad_arguments_are_one_line_errors(tmp_path, pg_url):
    source = make_settings(tmp_path)
    missing = copy(source, pg_url)
    assert missing.exit_code == 1
    assert missing.stderr == f"Error: no event store at {source.sqlite_path}\n"
    seed(source, 1)
    not_postgres = copy(source, f"sqlite:///{tmp_path / 'other.db'}")
    assert not_postgres.exit_code == 2 and "--to" in not_postgres.stderr
    assert events_in(pg_url) == 0
