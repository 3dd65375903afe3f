"""The read models stay consistent with the event log: they catch up when they lag behind it,
under many concurrent writers, and with either `synchronous` setting."""

from __future__ import annotations

import random
import sqlite3
import threading

import pytest

from domain import errors as domain_errors
from service.settings import Settings
from service.store import backends, verification
from tests import read_models, worker_steps
from tests.service.store.histories import every_page, observe, varied_history, verify_offline
from tests.support import SECRET, LiveServer
from tests.support import create as _create


def _max_event_id(path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT MAX(rowid) FROM stored_events").fetchone()[0]
    finally:
        db.close()


def _pragma_synchronous(store, *, commit: bool) -> int:
    def pragma(c) -> int:
        c.execute("PRAGMA synchronous")
        return int(c.fetchone()[0])

    return store.write(pragma) if commit else store.read(pragma)


def test_read_models_catch_up_after_a_crash_between_events_and_projection(server, settings):
    with server.client("alice") as alice:
        old = varied_history(server, alice, "a", [])
    server.stop()
    projected_then = read_models.dump(settings.sqlite_path, all_counts=True)
    (position,) = projected_then["tracking"][0][1:]
    server.start()
    with server.client("alice") as alice:
        new = varied_history(server, alice, "b", old[:4])
    ids = old + new
    before = observe(server, ids)
    server.stop()
    live_tables = read_models.dump(settings.sqlite_path)
    # The crash: the events after `position` are recorded, their projection is not.
    read_models.restore(settings.sqlite_path, projected_then)
    assert position < _max_event_id(settings.sqlite_path)
    assert verify_offline(settings) != []
    server.start()
    after = observe(server, ids)
    assert after == before
    server.stop()
    assert verify_offline(settings) == []
    assert read_models.dump(settings.sqlite_path) == live_tables


def test_read_models_catch_up_after_losing_the_newest_rows(server, settings):
    with server.client("alice") as alice:
        jobs = [
            _create(alice, name=f"j{i}", headers={"Idempotency-Key": f"k{i}"}) for i in range(6)
        ]
        ids = [job["id"] for job in jobs]
    before = observe(server, ids)
    server.stop()
    live_tables = read_models.dump(settings.sqlite_path)
    keep = jobs[2]["last_event_id"]
    db = sqlite3.connect(settings.sqlite_path)
    with db:
        lost = [row[0] for row in db.execute("SELECT id FROM jobs WHERE created_seq > ?", (keep,))]
        for owner, job_type, status, rank, category, starred, result_type in db.execute(
            "SELECT owner, type, status, priority, COALESCE(category, ''), starred, "
            "COALESCE(result_type, '') FROM jobs WHERE created_seq > ?",
            (keep,),
        ).fetchall():
            db.execute(
                "UPDATE job_counts SET n = n - 1 WHERE owner = ? AND type = ? AND status = ? "
                "AND priority = ? AND category = ? AND starred = ? AND result_type = ?",
                (owner, job_type, status, rank, category, starred, result_type),
            )
        db.execute("DELETE FROM events WHERE id > ?", (keep,))
        db.execute("DELETE FROM jobs WHERE created_seq > ?", (keep,))
        db.execute(
            f"DELETE FROM idempotency_keys WHERE job_id IN ({','.join('?' * len(lost))})", lost
        )
        db.execute("UPDATE tracking SET position = ?", (keep,))
    db.close()
    assert len(lost) == 3
    server.start()
    assert observe(server, ids) == before
    server.stop()
    assert verify_offline(settings) == []
    assert read_models.dump(settings.sqlite_path) == live_tables


def test_synchronous_full_is_the_default(server):
    assert server.settings.sqlite_synchronous == "FULL"
    store = server.runtime.store
    assert _pragma_synchronous(store, commit=False) == 2
    assert _pragma_synchronous(store, commit=True) == 2


def test_synchronous_normal_from_the_environment(tmp_path):
    settings = Settings.from_env(
        {
            "JOBTRAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'normal.db'}",
            "JOBTRAIL_JWT_SECRET": SECRET,
            "JOBTRAIL_SQLITE_SYNCHRONOUS": "NORMAL",
        }
    )
    assert settings.sqlite_synchronous == "NORMAL"
    live = LiveServer(settings).start()
    try:
        with live.client("alice") as alice:
            _create(alice)
        assert _pragma_synchronous(live.runtime.store, commit=False) == 1
        assert _pragma_synchronous(live.runtime.store, commit=True) == 1
    finally:
        live.stop()
    default = Settings.from_env(
        {"JOBTRAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'full.db'}", "JOBTRAIL_JWT_SECRET": "x"}
    )
    store = backends.open_store(default)
    try:
        assert _pragma_synchronous(store, commit=False) == 2
    finally:
        store.close()


@pytest.mark.backends("sqlite", "postgres")  # the others read the SQLite file itself
def test_many_concurrent_writers_leave_consistent_read_models(server, settings):
    with server.client("alice") as alice:
        pool = [_create(alice, name=f"shared {i}")["id"] for i in range(12)]
    for job_id in pool[:4]:
        worker_steps.start(server, job_id)
    threads, operations = 32, 20
    barrier = threading.Barrier(threads)
    statuses: list[tuple[str, int, str]] = []
    created: list[str] = []
    lock = threading.Lock()

    def write(n: int) -> None:
        rng = random.Random(n)
        with server.client("alice") as client:
            barrier.wait(timeout=10)
            for i in range(operations):
                job_id = rng.choice(pool)
                action = rng.choice(("create", "patch", "patch", "cancel", "cancel_newest", "log"))
                if action == "create":
                    response = client.post("/api/v1/jobs", json={"type": "t", "name": f"{n}.{i}"})
                    if response.status_code == 201:
                        with lock:
                            created.append(response.json()["id"])
                elif action == "patch":
                    body = {"name": f"{n}.{i}", "starred": bool(i % 2), "metadata": {"n": n}}
                    response = client.patch(f"/api/v1/jobs/{job_id}", json=body)
                elif action == "cancel":
                    response = client.post(f"/api/v1/jobs/{job_id}/cancel")
                elif action == "cancel_newest":
                    response = client.post("/api/v1/cancel")
                else:
                    try:
                        worker_steps.progress(server, job_id, completed=i)
                    except domain_errors.InvalidTransition:
                        pass
                    continue
                with lock:
                    statuses.append((action, response.status_code, response.text))

    workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not any(worker.is_alive() for worker in workers)
    unexpected = [
        (action, status, text)
        for action, status, text in statuses
        if not (
            200 <= status < 300
            or (status == 409 and action == "cancel" and '"conflict"' in text)
            or (status == 404 and action == "cancel_newest")
        )
    ]
    assert unexpected == []
    assert sum(200 <= status < 300 for _, status, _ in statuses) > threads * operations // 2
    assert verification.verify(server.runtime.store) == []
    with server.client("alice") as alice:
        listed = every_page(alice, "/api/v1/jobs")
        assert {job["id"] for job in listed} == set(pool) | set(created)
        assert alice.get("/api/v1/jobs").json()["total"] == len(listed)
        total_events = 0
        for job in listed:
            events = every_page(alice, f"/api/v1/jobs/{job['id']}/events")
            assert job["version"] == len(events)
            assert [event["seq"] for event in events] == list(range(1, job["version"] + 1))
            assert job["last_event_id"] == events[-1]["id"]
            total_events += len(events)
        assert len(every_page(alice, "/api/v1/events")) == total_events
    server.stop()
    assert verify_offline(settings) == []
