"""Nothing acknowledged is ever lost across restarts and shutdowns (DESIGN.md, "What good looks
like"), and reads see every acknowledged write."""

from __future__ import annotations

import threading
import uuid

import httpx
import pytest

from service.store import verification
from tests import worker_steps
from tests.service.store.histories import every_page, observe, varied_history, verify_offline
from tests.support import LiveServer, make_settings, wait_for
from tests.support import create as _create

pytestmark = pytest.mark.backends("sqlite", "postgres")


def test_restart_loses_nothing(server, settings):
    with server.client("alice") as alice:
        first = varied_history(server, alice, "a", [])
        ids = first + varied_history(server, alice, "b", first[:3])
    before = observe(server, ids)
    assert len(before["alice_list"]) > 10
    server.restart()
    after = observe(server, ids)
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
    assert verify_offline(settings) == []


def test_as_of_after_a_restart_equals_each_version_as_it_was_served(tmp_path, database_url):
    # Snapshots every 3 events and a one-job cache: loads go through snapshots and replays.
    settings = make_settings(
        tmp_path, database_url=database_url, aggregate_cache_size=1, snapshot_interval=3
    )
    live = LiveServer(settings)
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
        assert verification.verify(live.runtime.store) == []
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
    assert verify_offline(settings) == []


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
        listed = {job["id"] for job in every_page(alice, "/api/v1/jobs")}
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
    assert verify_offline(settings) == []
    server.start()
    with server.client("alice") as alice:
        listed = {job["id"] for job in every_page(alice, "/api/v1/jobs")}
    assert set(acknowledged) <= listed
    assert len(acknowledged) >= 60
