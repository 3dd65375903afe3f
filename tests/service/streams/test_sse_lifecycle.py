"""SSE streams over real HTTP: slow and vanished clients, the per-user cap, token expiry,
auth from the cookie or the query, tenancy and server shutdown."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from service.edge.auth import COOKIE_NAME
from service.settings import Streams
from tests import sse_reader, support, worker_steps
from tests.support import TLS, LiveServer, make_settings, wait_for

pytestmark = pytest.mark.backends("sqlite", "postgres")

SSE = {"Accept": "text/event-stream"}


def _server(tmp_path, database_url, **streams) -> LiveServer:
    settings = make_settings(tmp_path, database_url=database_url, sqlite_synchronous="NORMAL")
    return LiveServer(dataclasses.replace(settings, sse=Streams(**streams))).start()


@pytest.fixture
def tight(tmp_path, database_url) -> Iterator[LiveServer]:
    """Small buffers, a short send timeout, at most 3 streams per user."""
    live = _server(
        tmp_path, database_url, buffer_events=16, send_timeout_seconds=1.0, max_per_owner=3
    )
    try:
        yield live
    finally:
        live.stop()


_create = functools.partial(support.create, type="video.render")


def _subscribers(server: LiveServer) -> float:
    text = httpx.get(f"{server.url}/metrics", verify=TLS).text
    line = next(x for x in text.splitlines() if x.startswith("jobtrail_sse_subscribers "))
    return float(line.split()[1])


@pytest.mark.backends("sqlite")  # the hub's buffers and counts, in memory
def test_a_client_that_stops_reading_delays_no_one_and_is_dropped(tight):
    with tight.client() as alice:
        job = _create(alice)
        worker_steps.start(tight, job["id"])
        path = f"/api/v1/jobs/{job['id']}/events"
        # The stalled client: a tiny receive window, and it never reads.
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", int(tight.url.rsplit(":", 1)[1])))
        stalled.sendall(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {tight.token()}\r\n\r\n".encode()
        )
        wait_for(lambda: _subscribers(tight) == 1)
        count, largest = 600, []
        with alice.stream("GET", path, headers=SSE) as response:
            events = sse_reader.events(response)
            assert [next(events).event for _ in range(2)] == ["created", "started"]

            def write() -> None:  # about 5 MB: more than the socket buffers hold
                for n in range(count):
                    worker_steps.log(tight, job["id"], f"{n} " + "x" * 8000)
                    largest.append(tight.runtime.hub.largest_buffer())

            writer = threading.Thread(target=write, daemon=True)
            started = time.monotonic()
            writer.start()
            got = [next(events).json["message"].split()[0] for _ in range(count)]
            elapsed = time.monotonic() - started
            writer.join(30)
            assert got == [str(n) for n in range(count)]
            assert elapsed < 20
            # The stalled client was disconnected; the reader's stream is the only one left.
            wait_for(lambda: _subscribers(tight) == 1, timeout=15)
        assert max(largest) <= 16
        stalled.close()
    wait_for(lambda: _subscribers(tight) == 0)


@pytest.mark.backends("sqlite")  # the hub's buffers and counts, in memory
def test_disconnected_clients_release_their_subscriptions(server):
    clients = [server.client(f"user-{n}") for n in range(20)]
    readers = []  # kept: a dropped reader closes its response
    with contextlib.ExitStack() as stack:
        for client in clients:
            stack.enter_context(client)
            response = stack.enter_context(client.stream("GET", "/api/v1/events", headers=SSE))
            readers.append(sse_reader.messages(response))
            assert next(readers[-1]).retry is not None
        assert _subscribers(server) == 20
    wait_for(lambda: _subscribers(server) == 0)
    assert server.runtime.hub.subscribers == 0


@pytest.mark.backends("sqlite")  # the hub's buffers and counts, in memory
def test_a_user_over_the_stream_cap_gets_429(tight):
    with tight.client() as alice, tight.client("bob") as bob, contextlib.ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(alice.stream("GET", "/api/v1/events", headers=SSE))
        wait_for(lambda: _subscribers(tight) == 3)
        refused = alice.get("/api/v1/events", headers=SSE)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        with bob.stream("GET", "/api/v1/events", headers=SSE) as other:
            assert other.status_code == 200  # the cap is per user
        stack.close()
        wait_for(lambda: _subscribers(tight) == 0)
        with alice.stream("GET", "/api/v1/events", headers=SSE) as again:
            assert again.status_code == 200


@pytest.mark.backends("sqlite")  # authentication: no store behaviour
def test_a_stream_closes_when_its_token_expires(server):
    token = server.verifier.issue("alice", ["jobs:read", "jobs:write"], 2)
    headers = {**SSE, "Authorization": f"Bearer {token}"}
    with httpx.Client(verify=TLS, base_url=server.url, timeout=10) as client:
        started = time.monotonic()
        with client.stream("GET", "/api/v1/events", headers=headers) as response:
            assert response.status_code == 200
            list(sse_reader.messages(response))  # returns once the server closes
        assert time.monotonic() - started < 5


@pytest.mark.backends("sqlite")  # authentication: no store behaviour
@pytest.mark.parametrize("how", ["cookie", "query"])
def test_browsers_authenticate_the_streams_with_the_cookie_or_the_query_token(server, alice, how):
    job = _create(alice)
    token = server.token("alice")
    cookies = {COOKIE_NAME: token} if how == "cookie" else {}
    params = {"access_token": token} if how == "query" else {}
    with httpx.Client(verify=TLS, base_url=server.url, cookies=cookies, timeout=10) as browser:
        for path in (f"/api/v1/jobs/{job['id']}/events", "/api/v1/events"):
            with browser.stream("GET", path, params={**params, "stream": "true"}) as response:
                assert response.status_code == 200
                assert next(sse_reader.events(response)).event == "created"
            # The cookie counts on every route; the query token only on the SSE form.
            assert browser.get(path, params=params).status_code == (200 if cookies else 401)
        one = browser.get(f"/api/v1/jobs/{job['id']}", params=params).status_code
        assert one == 200 if cookies else one in (400, 401)


def test_a_stream_shows_only_what_its_caller_may_see(server, alice, bob):
    mine = _create(alice)
    assert bob.get(f"/api/v1/jobs/{mine['id']}/events", headers=SSE).status_code == 404
    with bob.stream("GET", "/api/v1/events", headers=SSE) as response:
        events = sse_reader.events(response)
        worker_steps.start(server, mine["id"])
        theirs = _create(bob)
        first = next(events)
    assert first.json["job_id"] == theirs["id"] and first.event == "created"


def test_server_shutdown_closes_open_streams(tmp_path, database_url):
    live = _server(tmp_path, database_url)
    with live.client() as alice:
        job = _create(alice)
        with alice.stream("GET", f"/api/v1/jobs/{job['id']}/events", headers=SSE) as response:
            events = sse_reader.events(response)
            assert next(events).event == "created"
            started = time.monotonic()
            live.stop()
            assert time.monotonic() - started < 5
            assert list(events) == []
