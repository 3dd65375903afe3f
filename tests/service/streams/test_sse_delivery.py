"""Exactly-once delivery over real HTTP: cut-off subscribers that resume, and many at once."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import random
import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest

from service.settings import Streams
from tests import sse_reader, support, worker_steps
from tests.support import TLS, LiveServer, make_settings

pytestmark = pytest.mark.backends("sqlite", "postgres")

SSE = {"Accept": "text/event-stream"}
TOTAL = 1003  # created, started, 1000 progress, succeeded


@pytest.fixture
def fast(tmp_path, database_url) -> Iterator[LiveServer]:
    """NORMAL durability: a thousand single-event commits in a second or two."""
    settings = make_settings(tmp_path, database_url=database_url, sqlite_synchronous="NORMAL")
    settings = dataclasses.replace(settings, sse=Streams(max_per_owner=500))
    live = LiveServer(settings).start()
    try:
        yield live
    finally:
        live.stop()


_create = functools.partial(support.create, type="video.render")


def _all_ids(client: httpx.Client, path: str) -> list[int]:
    ids: list[int] = []
    while True:
        page = client.get(path, params={"after": ids[-1] if ids else 0, "limit": 1000}).json()
        ids += [item["id"] for item in page["items"]]
        if not page["has_more"]:
            return ids


def _writer(server: LiveServer, job_id: str, count: int) -> threading.Thread:
    def run() -> None:
        worker_steps.start(server, job_id)
        for n in range(count):
            worker_steps.progress(server, job_id, completed=n)
        worker_steps.succeed(server, job_id)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# On PostgreSQL the global stream only: it tails and catches up from the store as the job's
# stream does (which runs on SQLite), and costs as much again.
@pytest.mark.parametrize(
    "route", [pytest.param("job", marks=pytest.mark.backends("sqlite")), "all"]
)
def test_a_subscriber_cut_off_at_random_points_gets_every_event_exactly_once(fast, route):
    rng = random.Random(7)
    with fast.client() as alice:
        job = _create(alice)
        path = f"/api/v1/jobs/{job['id']}/events" if route == "job" else "/api/v1/events"
        writer = _writer(fast, job["id"], 1000)
        received: list[int] = []
        ended = False
        for _ in range(2000):  # bounded: each connection takes at least one event
            headers = {**SSE, "Last-Event-ID": str(received[-1])} if received else SSE
            with alice.stream("GET", path, headers=headers) as response:
                if response.status_code == 204:
                    ended = True
                    break
                assert response.status_code == 200
                take = rng.randint(1, 60)
                for message in sse_reader.events(response):
                    if message.event == "end":
                        ended = True
                        break
                    received.append(int(message.id))
                    take -= 1
                    if take == 0 or len(received) == TOTAL:
                        break  # the client hangs up in the middle of the stream
            if ended or (route == "all" and len(received) == TOTAL):  # it never ends
                break
        writer.join(timeout=60)
        expected = _all_ids(alice, path)
    assert len(expected) == TOTAL
    assert received == expected
    assert ended == (route == "job")


@pytest.mark.backends("sqlite")  # the fan-out to 100 subscribers is in memory
def test_a_hundred_concurrent_subscribers_all_get_everything_in_order(fast):
    with fast.client() as alice:
        job = _create(alice)
    path = f"/api/v1/jobs/{job['id']}/events"

    async def follow(
        client: httpx.AsyncClient, ready: asyncio.Event, opened: list[int]
    ) -> list[int]:
        ids: list[int] = []
        async with client.stream("GET", path, headers=SSE) as response:
            assert response.status_code == 200
            opened.append(1)
            if len(opened) == 100:
                ready.set()
            async for line in response.aiter_lines():
                if line.startswith("id: "):
                    ids.append(int(line[4:]))
                if line == "event: end":
                    return ids
        raise AssertionError("the stream closed without `end`")

    async def main() -> list[list[int]]:
        limits = httpx.Limits(max_connections=200)
        async with fast.async_client() as base:
            client = httpx.AsyncClient(
                verify=TLS, base_url=base.base_url, headers=base.headers, limits=limits, timeout=60
            )
            async with client:
                ready, opened = asyncio.Event(), []
                tasks = [asyncio.create_task(follow(client, ready, opened)) for _ in range(100)]
                await asyncio.wait_for(ready.wait(), 30)
                writer = _writer(fast, job["id"], 200)
                results = await asyncio.wait_for(asyncio.gather(*tasks), 60)
                await asyncio.to_thread(writer.join, 30)
                return results

    results = asyncio.run(main())
    with fast.client() as alice:
        expected = _all_ids(alice, path)
    assert len(expected) == 203
    assert all(ids == expected for ids in results)


def test_a_subscriber_whose_buffer_overflows_catches_up_from_the_store(tmp_path, database_url):
    settings = make_settings(tmp_path, database_url=database_url, sqlite_synchronous="NORMAL")
    live = LiveServer(dataclasses.replace(settings, sse=Streams(buffer_events=4))).start()
    try:
        with live.client() as alice:
            job = _create(alice)
            worker_steps.start(live, job["id"])
            path = f"/api/v1/jobs/{job['id']}/events"
            with alice.stream("GET", path, headers=SSE) as response:
                events = sse_reader.events(response)
                assert [next(events).event for _ in range(2)] == ["created", "started"]

                def burst(uow) -> None:  # 200 events in one commit: one batch for the tailer
                    found = uow.get(uuid.UUID(job["id"]))
                    for n in range(200):
                        found.log(level="info", message=str(n), data=None, now=uow.now)

                live.runtime.writer.call(burst)
                got = [next(events) for _ in range(200)]
            expected = _all_ids(alice, path)[2:]
        assert [int(m.id) for m in got] == expected
        assert [m.json["message"] for m in got] == [str(n) for n in range(200)]
        assert live.runtime.hub.largest_buffer() <= 4
        assert live.runtime.hub.fell_behind >= 1  # the catch-up path was taken
    finally:
        live.stop()
