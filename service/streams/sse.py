"""The SSE form of the events routes (API.md, "Events: pages or a live stream").

A stream subscribes to the live feed first, then replays the backlog from the store after its
start id, then sends what the feed buffered, skipping ids it has already sent: merging by id,
so that nothing is lost or repeated at the switch. A subscriber that fell behind (its buffer
overflowed) goes back to reading the store from its last sent id, then rejoins.

Why not sse-starlette's `EventSourceResponse`: it renders every `ServerSentEvent` per
subscriber, keeps module-global shutdown state and cannot time-box one write. Here every live
frame is encoded once by the hub and the same bytes are written to every subscriber, each write
is bounded by `send_timeout`, and the response is a small ASGI callable over `send`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import uvicorn
from starlette.responses import Response
from uvicorn.supervisors import multiprocess

from service.streams import hub as live

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from starlette.types import Receive, Scope, Send

    from projections.feed import EventRow

    Page = Callable[[int, int], Awaitable[list[EventRow]]]
    Ending = Callable[[int], Awaitable[str | None]]

log = logging.getLogger("jobtrail.sse")

MEDIA_TYPE = "text/event-stream"
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
# Never compressed: the app has no compression middleware, and a compressor would hold
# frames back until its block fills.
HEARTBEAT = b": keep-alive\n\n"
# Events after which a one-job stream checks whether the job has ended.
ENDING_TYPES = frozenset({"succeeded", "failed", "cancelled", "deleted"})
PAGE = 500


class EventStream(Response):
    """A live stream of one subscriber of the hub, from `start` (exclusive)."""

    media_type = MEDIA_TYPE

    def __init__(
        self,
        *,
        hub: live.Hub,
        subscriber: live.Subscriber,
        start: int,
        page: Page,
        ending: Ending | None,
        expires_at: datetime,
        heartbeat: float,
        send_timeout: float,
        retry_ms: int,
    ) -> None:
        super().__init__(headers=HEADERS, media_type=MEDIA_TYPE)
        # A stream has no length: the body is sent in pieces, until the stream ends.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self._hub = hub
        self._subscriber = subscriber
        self._start = start
        self._page = page
        self._ending = ending
        self._expires_in = (expires_at - datetime.now(UTC)).total_seconds()
        self._heartbeat = heartbeat
        self._send_timeout = send_timeout
        self._retry = b"retry: %d\n\n" % retry_ms
        self._quiet_since = 0.0
        self._loop = asyncio.get_running_loop()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        subscriber = self._subscriber
        finished = False
        try:
            async with anyio.create_task_group() as group:
                subscriber.cancel = group.cancel_scope.cancel
                group.start_soon(_watch_disconnect, receive, group.cancel_scope)
                await self._run(send)
                finished = True
                group.cancel_scope.cancel()
            if finished:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._send_timeout):
                        await send({"type": "http.response.body", "body": b""})
            elif subscriber.timed_out:
                # A client that does not read is dropped rather than buffered for; the server
                # closes the connection, as the response was never completed.
                log.info("closed an event stream whose client stopped reading")
        finally:
            subscriber.cancel = None
            self._hub.unsubscribe(subscriber)

    async def _run(self, send: Send) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._expires_in
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await self._write(send, self._retry)
        subscriber, last, catch_up = self._subscriber, self._start, True
        while not subscriber.closed:
            if catch_up or subscriber.behind:
                subscriber.rewind()  # before reading: whatever is pushed from now on is kept
                last = await self._catch_up(send, last)
                catch_up = False
                if self._ending is not None:
                    final = await self._ending(last)
                    if final is not None:
                        await self._write(send, b"event: end\ndata: %s\n\n" % final.encode())
                        return
                continue
            frames = [frame for frame in subscriber.take() if frame.id > last]
            if frames:
                await self._write_frames(send, frames)
                last = frames[-1].id
                catch_up = self._ending is not None and any(
                    frame.type in ENDING_TYPES for frame in frames
                )
                continue
            now = loop.time()
            if now >= deadline:
                return  # the token expired: the client reconnects with a fresh one
            if now - self._quiet_since >= self._heartbeat:
                await self._write(send, HEARTBEAT)
            # The hub's watchdog wakes the subscriber at this time if nothing else does.
            subscriber.wake_at = min(self._quiet_since + self._heartbeat, deadline)
            await subscriber.wait()

    async def _catch_up(self, send: Send, last: int) -> int:
        while True:
            rows = await self._page(last, PAGE)
            if rows:
                await self._write(
                    send,
                    b"".join(live.encode(row.id, row.type, row.document) for row in rows),
                )
                last = rows[-1].id
            if len(rows) < PAGE:
                return last

    async def _write_frames(self, send: Send, frames: Sequence[live.Frame]) -> None:
        # One frame: the hub's bytes, shared by every subscriber, are written as they are.
        body = frames[0].data if len(frames) == 1 else b"".join(f.data for f in frames)
        await self._write(send, body)

    async def _write(self, send: Send, body: bytes) -> None:
        # Time-boxed by the hub's watchdog, which cancels the stream when a write takes longer
        # than `send_timeout` (the server's send waits only while the client does not read).
        self._quiet_since = self._subscriber.writing_since = self._loop.time()
        await send({"type": "http.response.body", "body": body, "more_body": True})
        self._subscriber.writing_since = 0.0


async def _watch_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


class Server(uvicorn.Server):
    """uvicorn waits for open responses to finish before it runs the lifespan's shutdown, and a
    live stream or a long-polling claim may not finish for a long time: end the streams, and
    answer the waiting claimers 204, first, so that shutdown is clean and prompt."""

    async def shutdown(self, sockets: Any = None) -> None:
        # The app, under whatever middleware uvicorn wrapped it in (each keeps it as `.app`).
        app: Any = getattr(self.config, "loaded_app", None) or self.config.app
        while app is not None and not hasattr(getattr(app, "state", None), "runtime"):
            app = getattr(app, "app", None)
        if app is not None:
            app.state.runtime.hub.close()
            if app.state.runtime.claims is not None:
                app.state.runtime.claims.close()
        await super().shutdown(sockets)


class _Process(multiprocess.Process):
    """A worker process of `serve --workers N` that runs our Server (streams close first)."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = Server(config=self.config)
        return self._server


def run_processes(config: uvicorn.Config) -> None:
    """Runs `config.workers` server processes on one listening socket, under uvicorn's
    supervisor (restarts a process that dies; SIGTERM stops them all, each cleanly)."""
    sock = config.bind_socket()
    # The supervisor makes its processes by this module-level name.
    multiprocess.Process = _Process  # type: ignore[misc]
    multiprocess.Multiprocess(config, sockets=[sock]).run()
