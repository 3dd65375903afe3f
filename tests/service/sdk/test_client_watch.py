"""Live events through the client: `watch` and `watch_all` see every event once, in order,
also across a server restart in the middle of a stream; `wait` returns the finished job."""

from __future__ import annotations

import threading

import pytest

from service.sdk import errors
from service.sdk.client import AsyncClient, Client
from tests.service.sdk.test_client import refusing_address
from tests.support import LiveServer, wait_for

pytestmark = pytest.mark.backends("sqlite", "postgres")


@pytest.fixture
def live(settings):
    server = LiveServer(settings).start()
    yield server
    server.stop()


def clients(server):
    return (
        Client(server.url, server.token("alice"), reconnect_timeout=20),
        Client(server.url, server.token("w", "worker")),
    )


def test_watch_sees_every_event_once_across_a_restart(live):
    """The consumer is reading when the server stops: it reconnects (refused while the server
    is down) and resumes after the last event it saw, with the events made meanwhile."""
    alice, worker = clients(live)
    with alice, worker:
        job = alice.create_job("w.restart")
        claim = worker.claim(["w.restart"])
        for i in range(3):
            worker.progress(job.id, claim.token, percent=i)
        watch = alice.watch(job.id)
        received = []
        consumer = threading.Thread(target=lambda: received.extend(watch), daemon=True)
        consumer.start()
        wait_for(lambda: len(received) == 5)  # created, started, 3 progress
        port = int(live.url.rpartition(":")[2])
        live.stop()
        live.start(port)
        for i in range(3, 6):
            worker.progress(job.id, claim.token, percent=i)
        worker.log(job.id, claim.token, "done soon")
        worker.succeed(job.id, claim.token, result=1)
        consumer.join(timeout=30)
        assert not consumer.is_alive()
        stored = list(alice.iter_job_events(job.id))
    assert [e.id for e in received] == [e.id for e in stored]
    assert received == stored
    assert watch.connections >= 2
    assert watch.final is not None and watch.final.status == "succeeded"


@pytest.mark.anyio
async def test_async_watch_resumes_after_a_restart_and_wait_returns_the_job(live):
    async with (
        AsyncClient(live.url, live.token("alice")) as alice,
        AsyncClient(live.url, live.token("w", "worker")) as worker,
    ):
        job = await alice.create_job("w.async")
        claim = await worker.claim(["w.async"])
        await worker.progress(job.id, claim.token, percent=10)
        watch = alice.watch(job.id)
        events = aiter(watch)
        first = [await anext(events) for _ in range(3)]
        live.restart(same_port=True)  # the stream open now is closed by the stop
        await worker.progress(job.id, claim.token, percent=90)
        await worker.fail(job.id, claim.token, "no", retry=False)
        rest = [event async for event in events]
        stored = [event async for event in alice.iter_job_events(job.id)]
        finished = await alice.wait(job.id)
    assert first + rest == stored
    assert [e.type for e in rest] == ["progress", "failed"]
    assert watch.connections == 2 and watch.final == finished
    assert finished.status == "failed"


def test_wait_follows_a_job_until_it_finishes(live):
    alice, worker = clients(live)
    with alice, worker:
        job = alice.create_job("w.wait")
        finished = []
        waiter = threading.Thread(target=lambda: finished.append(alice.wait(job.id)))
        waiter.start()
        claim = worker.claim(["w.wait"])
        worker.progress(job.id, claim.token, percent=50)
        worker.succeed(job.id, claim.token, result={"n": 1})
        waiter.join(timeout=30)
        assert finished and finished[0].status == "succeeded"
        assert finished[0].result == {"n": 1}
        assert alice.wait(job.id) == finished[0]  # already finished: answered at once


def test_watch_of_a_finished_job_replays_it_or_ends_at_once(live):
    alice, worker = clients(live)
    with alice, worker:
        job = alice.create_job("w.done")
        cancelled = alice.cancel_job(job.id)
        watch = alice.watch(job.id)
        assert [e.type for e in watch] == ["created", "cancelled"]
        assert watch.final == cancelled
        nothing_left = alice.watch(job.id, after=cancelled.last_event_id)
        assert list(nothing_left) == [] and nothing_left.final is None  # the server's 204
        with pytest.raises(errors.NotFoundError):
            list(alice.watch("00000000-0000-0000-0000-000000000000"))


def test_watch_all_filters_and_resumes_after_a_cursor(live):
    alice, worker = clients(live)
    with alice, worker:
        one = alice.create_job("w.all")
        two = alice.create_job("w.all")
        alice.update_job(one.id, starred=True)
        alice.cancel_job(two.id)
        live_events = alice.watch_all(job_id=[one.id, two.id], type=["created", "cancelled"])
        got = [next(live_events) for _ in range(3)]
        assert [(e.job_id, e.type) for e in got] == [
            (one.id, "created"),
            (two.id, "created"),
            (two.id, "cancelled"),
        ]
        later = alice.watch_all(after=got[0].id, job_id=one.id)
        assert next(later).type == "updated"
        later.close()
        live_events.close()


def test_a_stream_that_cannot_reconnect_gives_up_with_a_transport_error():
    with refusing_address() as url, Client(url, "t", reconnect_timeout=0.2) as client:
        with pytest.raises(errors.TransportError):
            list(client.watch("00000000-0000-0000-0000-000000000000"))
