"""The service over real HTTP on PostgreSQL: a job's whole life (create, a long-polling claim,
progress, logs, an SSE subscriber, the list), the read models equal to the fold of the events,
two instances sharing one database, and a database that goes away answered with 503s, not 500s,
until it is back."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from psycopg import sql

from service.store import backends, verification
from tests import sse_reader
from tests.service.edge import nul_cases
from tests.service.edge.hostile import SSE
from tests.support import LiveServer, call, claim, create, create_for_worker, wait_for

pytestmark = pytest.mark.postgres


@pytest.fixture
def live(pg_settings) -> Iterator[LiveServer]:
    server = LiveServer(pg_settings).start()
    try:
        yield server
    finally:
        server.stop()


def test_a_job_runs_from_create_to_success_on_postgres(live):
    with live.client("alice") as alice, live.client("w-1", "worker") as worker:
        claimed: list[dict] = []
        poller = threading.Thread(target=lambda: claimed.append(claim(worker, ["t.a"], wait=10)))
        poller.start()  # a long poll, waiting before the job exists
        job = create_for_worker(alice, name="on pg")
        poller.join()
        assert claimed[0]["job"]["id"] == job["id"]

        streamed: list[sse_reader.Message] = []
        path = f"/api/v1/jobs/{job['id']}/events"

        def subscribe():
            with alice.stream("GET", path, headers=SSE, timeout=10) as response:
                assert response.status_code == 200
                streamed.extend(sse_reader.events(response))  # until `end`

        subscriber = threading.Thread(target=subscribe)
        subscriber.start()
        wait_for(lambda: len(streamed) >= 2)  # created, started: caught up, now live
        assert call(worker, claimed[0], "progress", {"percent": 50.0}).status_code == 200
        assert call(worker, claimed[0], "logs", {"message": "half"}).status_code in (200, 202)
        assert call(worker, claimed[0], "succeed", {"result": {"ok": True}}).status_code == 200
        subscriber.join(timeout=10)

        page = alice.get(path).json()
        assert [m.event for m in streamed] == [e["type"] for e in page["items"]] + ["end"]
        assert [int(str(m.id)) for m in streamed[:-1]] == [e["id"] for e in page["items"]]
        listed = alice.get("/api/v1/jobs", params={"status": "succeeded"}).json()
        assert [item["id"] for item in listed["items"]] == [job["id"]]
        assert listed["total"] == 1
        got = alice.get(f"/api/v1/jobs/{job['id']}").json()
        assert (got["status"], got["progress"]["percent"], got["result"]) == (
            "succeeded",
            50.0,
            {"ok": True},
        )
    assert verification.verify(live.runtime.store) == []


def test_a_database_gone_away_answers_503_until_it_is_back(live, pg_server, pg_url):
    name = sql.Identifier(pg_url.rpartition("/")[2])
    with live.client("alice") as alice:
        create(alice)
        with pg_server.admin() as admin:
            admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(name))
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (pg_url.rpartition("/")[2],),
            )
        try:
            written = alice.post("/api/v1/jobs", json={"type": "t"})
            listed = alice.get("/api/v1/jobs")
        finally:
            with pg_server.admin() as admin:
                admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(name))
        for response in (written, listed):
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "unavailable"
            assert response.headers["retry-after"] == "1"
        wait_for(lambda: alice.get("/api/v1/jobs").status_code == 200)
        create(alice)
        assert alice.get("/api/v1/jobs").json()["total"] == 2


def test_two_instances_on_one_database_serve_one_job_between_them(pg_settings):
    a, b = LiveServer(pg_settings).start(), LiveServer(pg_settings).start()
    try:
        with (
            a.client("alice") as alice_a,
            b.client("alice") as alice_b,
            a.client("w-1", "worker") as worker_a,
            b.client("w-1", "worker") as worker_b,
        ):
            claimed: list[dict] = []
            poller = threading.Thread(
                target=lambda: claimed.append(claim(worker_b, ["t.a"], wait=10))
            )
            poller.start()  # on B, waiting for a job that A is about to create
            job = create_for_worker(alice_a)
            poller.join()
            assert claimed[0]["job"]["id"] == job["id"]

            streamed: list[sse_reader.Message] = []
            path = f"/api/v1/jobs/{job['id']}/events"

            def subscribe():  # on B, while the writes go to A and B in turn
                with alice_b.stream("GET", path, headers=SSE, timeout=10) as response:
                    streamed.extend(sse_reader.events(response))

            subscriber = threading.Thread(target=subscribe)
            subscriber.start()
            wait_for(lambda: len(streamed) >= 2)
            for n, worker in enumerate([worker_a, worker_b] * 3):
                progress = call(worker, claimed[0], "progress", {"percent": float(n)})
                assert progress.status_code == 200, progress.text
            assert call(worker_a, claimed[0], "succeed", {"result": {}}).status_code == 200
            subscriber.join(timeout=10)

            page = alice_a.get(path).json()
            assert [int(str(m.id)) for m in streamed[:-1]] == [e["id"] for e in page["items"]]
            assert [m.event for m in streamed][-2:] == ["succeeded", "end"]
            assert alice_b.get(f"/api/v1/jobs/{job['id']}").json()["version"] == 9
    finally:
        a.stop()
        b.stop()
    store = backends.open_store(pg_settings)  # the read models equal the fold, whoever wrote
    try:
        assert verification.verify(store) == []
    finally:
        store.close()


def test_the_nul_character_is_a_400_on_postgres_not_a_500(live):
    nul_cases.check_nul_is_refused_everywhere(live)
