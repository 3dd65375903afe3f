"""Nothing acknowledged is ever lost: across restarts, under concurrent writers, and when the
read models lag behind the event log (DESIGN.md, "What good looks like")."""

from __future__ import annotations

import random
import sqlite3
import threading
import uuid
from typing import Any

import httpx

from domain import errors as domain_errors
from service.settings import Settings
from service.store import rebuild
from service.store.sqlite import EventStore
from tests import read_models, worker_steps
from tests.support import SECRET, LiveServer, make_settings, wait_for
from tests.support import create as _create

READ_TABLES = ("jobs", "job_counts", "events", "idempotency_keys", "tracking")


def _every_page(client, path: str, **params) -> list[dict]:
    items: list[dict] = []
    if path.endswith("/events"):
        after = 0
        while True:
            page = client.get(path, params={**params, "after": after, "limit": 1000}).json()
            items += page["items"]
            if not page["has_more"]:
                return items
            after = page["next_after"]
    query: dict[str, Any] = {**params, "limit": 100}
    while True:
        page = client.get(path, params=query).json()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        query = {**params, "limit": 100, "cursor": page["next_cursor"]}


def _observe(server: LiveServer, job_ids: list[str]) -> dict[str, Any]:
    """Everything the API shows about these jobs, to alice and to an admin."""
    with server.client("alice") as alice, server.client("root", "admin") as admin:
        seen: dict[str, Any] = {
            "alice_list": _every_page(alice, "/api/v1/jobs"),
            "alice_by_priority": _every_page(alice, "/api/v1/jobs", sort="priority", order="asc"),
            "admin_list": _every_page(admin, "/api/v1/jobs"),
            "alice_events": _every_page(alice, "/api/v1/events"),
            "admin_events": _every_page(admin, "/api/v1/events"),
            "alice_total": alice.get("/api/v1/jobs", params={"status": "pending"}).json()["total"],
        }
        for job_id in job_ids:
            got = alice.get(f"/api/v1/jobs/{job_id}", params={"include": "logs"})
            seen[job_id] = (got.status_code, got.json())
            seen[f"{job_id}/events"] = _every_page(admin, f"/api/v1/jobs/{job_id}/events")
    return seen


def _varied_history(server: LiveServer, client, tag: str, old: list[str]) -> list[str]:
    """Creates, patches, runs, cancels and deletes a mix of jobs; touches `old` ones too."""
    ids = []
    for i in range(8):
        headers = {"Idempotency-Key": f"{tag}-{i}"} if i % 2 else None
        job = _create(
            client,
            headers=headers,
            name=f"{tag} {i}",
            priority=("low", "normal", "high")[i % 3],
            category="c" if i % 2 else None,
            payload={"n": i, "list": [1, 2.5, None, "é"]},
            metadata={"tag": tag},
            max_attempts=2,
        )
        ids.append(job["id"])
    client.patch(f"/api/v1/jobs/{ids[0]}", json={"starred": True, "metadata": {"x": 1}})
    worker_steps.start(server, ids[1])
    worker_steps.progress(server, ids[1], percent=10.0, stage="one", total=3, completed=1)
    worker_steps.log(server, ids[1], "working", data={"k": [1, 2]})
    worker_steps.succeed(server, ids[1], result={"ok": True}, result_type="report")
    worker_steps.start(server, ids[2])
    worker_steps.fail(server, ids[2], message="try again", retry=True)
    assert client.post(f"/api/v1/jobs/{ids[3]}/cancel").status_code == 200
    worker_steps.start(server, ids[4])
    assert client.post(f"/api/v1/jobs/{ids[4]}/cancel").json()["cancel_requested"] is True
    assert client.delete(f"/api/v1/jobs/{ids[5]}").status_code == 204
    worker_steps.start(server, ids[6])
    assert client.delete(f"/api/v1/jobs/{ids[6]}").status_code == 204
    replay = client.post(f"/api/v1/jobs/{ids[1]}/replay")
    assert replay.status_code == 201
    ids.append(replay.json()["id"])
    for job_id in old:
        client.patch(f"/api/v1/jobs/{job_id}", json={"name": f"{tag} touched"})
        client.post(f"/api/v1/jobs/{job_id}/cancel", json={"reason": tag})
    if old:
        client.delete(f"/api/v1/jobs/{old[0]}")
    return ids


def _max_event_id(path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT MAX(rowid) FROM stored_events").fetchone()[0]
    finally:
        db.close()


def _verify_offline(settings: Settings) -> list[rebuild.Mismatch]:
    store = EventStore.open(settings)
    try:
        return rebuild.verify(store)
    finally:
        store.close()


def _pragma_synchronous(store: EventStore, *, commit: bool) -> int:
    with store.recorder.datastore.transaction(commit=commit) as c:  # type: ignore[attr-defined]
        c.execute("PRAGMA synchronous")
        return int(c.fetchone()[0])


def test_restart_loses_nothing(server, settings):
    with server.client("alice") as alice:
        first = _varied_history(server, alice, "a", [])
        ids = first + _varied_history(server, alice, "b", first[:3])
    before = _observe(server, ids)
    assert len(before["alice_list"]) > 10
    server.restart()
    after = _observe(server, ids)
    assert after == before
    with server.client("alice") as alice:
        again = alice.post(
            "/api/v1/jobs",
            json={
                "type": "t",
                "name": "a 1",
                "priority": "normal",
                "category": "c",
                "payload": {"n": 1, "list": [1, 2.5, None, "é"]},
                "metadata": {"tag": "a"},
                "max_attempts": 2,
            },
            headers={"Idempotency-Key": "a-1"},
        )
        assert again.status_code == 200, again.text
        assert again.json()["id"] == first[1]
        # The writer's cache is cold after the restart: commands load the jobs from the store.
        patched = alice.patch(f"/api/v1/jobs/{first[7]}", json={"starred": True})
        assert patched.status_code == 200
        assert patched.json()["version"] == before[first[7]][1]["version"] + 1
    server.stop()
    assert _verify_offline(settings) == []


def test_as_of_after_a_restart_equals_each_version_as_it_was_served(tmp_path):
    # Snapshots every 3 events and a one-job cache: loads go through snapshots and replays.
    live = LiveServer(make_settings(tmp_path, aggregate_cache_size=1, snapshot_interval=3))
    live.start()
    try:
        with live.client("alice") as alice:
            job_id = _create(alice, max_attempts=2, payload={"p": [1, 2]})["id"]
            other = _create(alice)["id"]
            path = f"/api/v1/jobs/{job_id}"
            steps = [
                lambda: alice.patch(path, json={"name": "first"}),
                lambda: alice.patch(f"/api/v1/jobs/{other}", json={"starred": True}),
                lambda: worker_steps.start(live, job_id),
                lambda: worker_steps.progress(live, job_id, percent=5.0, stage="a"),
                lambda: worker_steps.log(live, job_id, "x", level="warning", data=[1]),
                lambda: worker_steps.progress(live, job_id, completed=3),
                lambda: worker_steps.fail(live, job_id, message="again", retry=True),
                lambda: alice.patch(path, json={"metadata": {"a": 1}, "starred": True}),
                lambda: alice.post(f"{path}/cancel", json={"reason": "enough"}),
            ]
            served = [alice.get(path).json()]
            for step in steps:
                step()
                served.append(alice.get(path).json())
        assert [doc["version"] for doc in served] == [1, 2, 2, 3, 4, 5, 6, 7, 8, 9]
        live.restart()
        with live.client("alice") as alice:
            for doc in served:
                as_of = alice.get(path, params={"as_of": doc["version"]})
                assert as_of.status_code == 200, as_of.text
                assert as_of.json() == doc
            assert alice.get(path).json() == served[-1]
        assert rebuild.verify(live.runtime.store) == []
    finally:
        live.stop()


def test_concurrent_creates_with_one_idempotency_key_make_one_job(server):
    threads = 16
    barrier = threading.Barrier(threads)
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def create() -> None:
        with server.client("alice") as client:
            barrier.wait(timeout=10)
            response = client.post(
                "/api/v1/jobs",
                json={"type": "t", "payload": {"same": True}},
                headers={"Idempotency-Key": "once"},
            )
            with lock:
                answers.append((response.status_code, response.json()["id"]))

    workers = [threading.Thread(target=create) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(status for status, _ in answers) == [200] * (threads - 1) + [201]
    assert len({job_id for _, job_id in answers}) == 1
    with server.client("alice") as alice:
        assert alice.get("/api/v1/jobs").json()["total"] == 1
        assert len(alice.get("/api/v1/events").json()["items"]) == 1


def test_payload_shaped_like_a_transcoder_envelope_survives_a_restart(server, settings):
    payloads = [
        {"_type_": "uuid_hex", "_data_": "0" * 32},
        {"_type_": "no_such_type", "_data_": 1},
        {"nested": [{"_type_": "decimal_str", "_data_": "1.5"}]},
    ]
    with server.client("alice") as alice:
        jobs = [_create(alice, payload=payload, metadata={"m": payload}) for payload in payloads]
    server.restart()
    with server.client("alice") as alice:
        for job, payload in zip(jobs, payloads, strict=True):
            as_of = alice.get(f"/api/v1/jobs/{job['id']}", params={"as_of": 1})
            assert as_of.status_code == 200
            assert as_of.json()["payload"] == payload
            patched = alice.patch(f"/api/v1/jobs/{job['id']}", json={"starred": True})
            assert patched.status_code == 200
            assert patched.json()["payload"] == payload
    server.stop()
    assert _verify_offline(settings) == []


def test_read_your_writes_under_concurrency(server):
    threads = 16
    barrier = threading.Barrier(threads)
    failures: list[str] = []

    def create_then_read(n: int) -> None:
        with server.client("alice") as client:
            barrier.wait(timeout=10)
            created = client.post("/api/v1/jobs", json={"type": "t", "name": f"job {n}"})
            if created.status_code != 201:
                failures.append(f"{n}: create {created.status_code}")
                return
            job = created.json()
            got = client.get(f"/api/v1/jobs/{job['id']}")
            if got.status_code != 200 or got.json() != job:
                failures.append(f"{n}: get {got.status_code}")
            listed = client.get("/api/v1/jobs", params={"limit": 100}).json()
            if job["id"] not in {item["id"] for item in listed["items"]}:
                failures.append(f"{n}: not listed")
            if listed["total"] < len(listed["items"]):
                failures.append(f"{n}: total {listed['total']} < {len(listed['items'])}")
            events = client.get(f"/api/v1/jobs/{job['id']}/events").json()["items"]
            if [event["id"] for event in events] != [job["last_event_id"]]:
                failures.append(f"{n}: events {events}")

    workers = [threading.Thread(target=create_then_read, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not any(worker.is_alive() for worker in workers)
    assert failures == []
    with server.client("alice") as client:
        assert client.get("/api/v1/jobs").json()["total"] == threads


def test_read_models_catch_up_after_a_crash_between_events_and_projection(server, settings):
    with server.client("alice") as alice:
        old = _varied_history(server, alice, "a", [])
    server.stop()
    projected_then = read_models.dump(settings.sqlite_path, all_counts=True)
    (position,) = projected_then["tracking"][0][1:]
    server.start()
    with server.client("alice") as alice:
        new = _varied_history(server, alice, "b", old[:4])
    ids = old + new
    before = _observe(server, ids)
    server.stop()
    live_tables = read_models.dump(settings.sqlite_path)
    # The crash: the events after `position` are recorded, their projection is not.
    read_models.restore(settings.sqlite_path, projected_then)
    assert position < _max_event_id(settings.sqlite_path)
    assert _verify_offline(settings) != []
    server.start()
    after = _observe(server, ids)
    assert after == before
    server.stop()
    assert _verify_offline(settings) == []
    assert read_models.dump(settings.sqlite_path) == live_tables


def test_read_models_catch_up_after_losing_the_newest_rows(server, settings):
    with server.client("alice") as alice:
        jobs = [
            _create(alice, name=f"j{i}", headers={"Idempotency-Key": f"k{i}"}) for i in range(6)
        ]
        ids = [job["id"] for job in jobs]
    before = _observe(server, ids)
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
    assert _observe(server, ids) == before
    server.stop()
    assert _verify_offline(settings) == []
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
    store = EventStore.open(default)
    try:
        assert _pragma_synchronous(store, commit=False) == 2
    finally:
        store.close()


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
    assert rebuild.verify(server.runtime.store) == []
    with server.client("alice") as alice:
        listed = _every_page(alice, "/api/v1/jobs")
        assert {job["id"] for job in listed} == set(pool) | set(created)
        assert alice.get("/api/v1/jobs").json()["total"] == len(listed)
        total_events = 0
        for job in listed:
            events = _every_page(alice, f"/api/v1/jobs/{job['id']}/events")
            assert job["version"] == len(events)
            assert [event["seq"] for event in events] == list(range(1, job["version"] + 1))
            assert job["last_event_id"] == events[-1]["id"]
            total_events += len(events)
        assert len(_every_page(alice, "/api/v1/events")) == total_events
    server.stop()
    assert _verify_offline(settings) == []


def test_every_acknowledged_create_survives_a_restart(server):
    acknowledged: list[str] = []
    lock = threading.Lock()

    def create(n: int) -> None:
        with server.client("alice") as client:
            for i in range(10):
                response = client.post("/api/v1/jobs", json={"type": "t", "name": f"{n}-{i}"})
                assert response.status_code == 201
                with lock:
                    acknowledged.append(response.json()["id"])

    workers = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert len(acknowledged) == 80
    server.restart()
    with server.client("alice") as alice:
        listed = {job["id"] for job in _every_page(alice, "/api/v1/jobs")}
        assert listed == set(acknowledged)
        missing = [
            job_id
            for job_id in acknowledged
            if alice.get(f"/api/v1/jobs/{job_id}").status_code != 200
        ]
        assert missing == []
    assert uuid.UUID(acknowledged[0])


def test_every_2xx_sent_before_a_shutdown_survives_it(server, settings):
    acknowledged: list[str] = []
    refused: list[int] = []
    lock = threading.Lock()

    def create(n: int) -> None:
        with server.client("alice") as client:
            for i in range(500):
                try:
                    response = client.post("/api/v1/jobs", json={"type": "t", "name": f"{n}-{i}"})
                except httpx.HTTPError:
                    return  # the server has gone: this create was never acknowledged
                with lock:
                    if response.status_code == 201:
                        acknowledged.append(response.json()["id"])
                    else:
                        refused.append(response.status_code)
                        return

    workers = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for worker in workers:
        worker.start()
    wait_for(lambda: len(acknowledged) >= 60)
    server.stop()
    for worker in workers:
        worker.join(timeout=60)
    assert not any(worker.is_alive() for worker in workers)
    assert all(status < 500 for status in refused), refused
    assert _verify_offline(settings) == []
    server.start()
    with server.client("alice") as alice:
        listed = {job["id"] for job in _every_page(alice, "/api/v1/jobs")}
    assert set(acknowledged) <= listed
    assert len(acknowledged) >= 60
