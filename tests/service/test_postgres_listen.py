"""Instances on one PostgreSQL database hear each other's commits (LISTEN/NOTIFY,
service/store/postgres_listen.py): a stream on B gets an event written through A, and a claimer
waiting on B gets a job created through A, without waiting for a poll — also after the
listening connection was cut.

The instances' fallback polls are set to a minute, far beyond these tests' waits, so nothing
but a notification can deliver in time: with the listener gone the tests fail."""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Iterator

import httpx
import pytest

from service.store.postgres_listen import APPLICATION_NAME
from tests import sse_reader
from tests.service.edge.hostile import SSE
from tests.support import LiveServer, claim, create, create_for_worker, two_servers, wait_for

pytestmark = pytest.mark.postgres

NO_POLL = 60.0  # seconds: longer than any wait below


@pytest.fixture
def pair(pg_settings) -> Iterator[tuple[LiveServer, LiveServer]]:
    settings = dataclasses.replace(
        pg_settings, sse=dataclasses.replace(pg_settings.sse, poll_seconds=NO_POLL)
    )
    with two_servers(settings) as both:
        yield both


def listening_sessions(pg_server, pg_url) -> set[int]:
    with pg_server.admin() as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s"
            " AND query LIKE 'LISTEN %%'",
            (pg_url.rpartition("/")[2], APPLICATION_NAME),
        ).fetchall()
    return {pid for (pid,) in rows}


class Stream:
    """The all-events stream of one client, read in a thread into a queue."""

    def __init__(self, client: httpx.Client) -> None:
        self.received: queue.Queue[sse_reader.Message] = queue.Queue()
        self._client = client
        self._closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._closed = True  # the client's close ends the read

    def _read(self) -> None:
        try:
            with self._client.stream("GET", "/api/v1/events", headers=SSE) as response:
                assert response.status_code == 200
                for message in sse_reader.events(response):
                    self.received.put(message)
        except httpx.TransportError:
            if not self._closed:
                raise

    def next_job(self) -> str:
        """The job id of the next event (fails after 10 s, a sixth of the fallback poll)."""
        return str(self.received.get(timeout=10).json["job_id"])


def test_a_stream_on_one_instance_gets_what_another_writes(pair, pg_server, pg_url):
    a, b = pair
    with (
        a.client("alice") as alice_a,
        b.client("alice") as alice_b,
        Stream(alice_b) as stream,
    ):
        first = create(alice_b)  # B's own commit: the stream is live once it arrives
        assert stream.next_job() == first["id"]
        for _ in range(3):
            written = create(alice_a)
            assert stream.next_job() == written["id"]

        # The listening connections cut: each instance listens again, and hears again.
        cut = listening_sessions(pg_server, pg_url)
        assert len(cut) == 2  # one per instance
        with pg_server.admin() as admin:
            for pid in cut:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        wait_for(lambda: len(listening_sessions(pg_server, pg_url) - cut) == 2)
        written = create(alice_a)
        assert stream.next_job() == written["id"]


def test_a_claimer_waiting_on_one_instance_gets_a_job_created_on_another(pair):
    a, b = pair
    with a.client("alice") as alice_a, b.client("w-1", "worker") as worker_b:
        claimed: list[dict] = []
        poller = threading.Thread(target=lambda: claimed.append(claim(worker_b, ["t.a"], wait=30)))
        poller.start()
        signal = b.runtime.claims
        assert signal is not None
        wait_for(lambda: signal.waiting == 1)
        assert signal.hears_others()  # so it does not poll: only a notification wakes it
        job = create_for_worker(alice_a)
        poller.join(timeout=20)
        assert claimed and claimed[0]["job"]["id"] == job["id"]
