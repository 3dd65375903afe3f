"""The live fan-out (DESIGN.md, "Live fan-out"): one tailer per process follows the event index
after the last id it has seen and hands each new event, encoded once as an SSE frame, to every
subscriber whose filter matches.

The tailer is woken at once by commits of this process (`Writer.on_commit` →
`loop.call_soon_threadsafe(hub.wake)`), on PostgreSQL also by those of every other instance
(service/store/postgres_listen.py calls `wake()`), and polls every `poll_seconds` otherwise:
the fallback for what nothing announces (other processes on one SQLite file, a listener that
lost its connection).

Buffers are bounded: a subscriber that falls `limit` frames behind loses its buffer and is
flagged `behind`; its stream then catches up from the store (service/streams/sse.py) instead of
slowing the tailer or growing memory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from projections import feed
from service import errors

if TYPE_CHECKING:
    from collections.abc import Callable

    from prometheus_client import Gauge

    from projections.reads import ReadPool
    from service.principal import Principal

log = logging.getLogger("jobtrail.live")

_TAIL_BATCH = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """One event as the SSE wire form, encoded once and shared by every subscriber."""

    id: int
    job_id: str
    owner: str
    type: str
    data: bytes


def encode(event_id: int, event_type: str, document: str) -> bytes:
    # A rendered Event is compact JSON: newlines inside strings are escaped, so it is one line.
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        event_id,
        event_type.encode(),
        document.encode(),
    )


class Subscriber:
    """One stream's view of the live feed: a filter and a bounded buffer of matching frames."""

    __slots__ = (
        "_buffer",
        "_limit",
        "_ready",
        "behind",
        "cancel",
        "closed",
        "job_id",
        "job_ids",
        "owner",
        "sub",
        "timed_out",
        "types",
        "wake_at",
        "writing_since",
    )

    def __init__(
        self,
        *,
        sub: str,
        owner: str | None,
        job_id: str | None,
        job_ids: tuple[str, ...],
        types: tuple[str, ...],
        limit: int,
    ) -> None:
        self.sub = sub
        self.owner = owner  # None: every owner (admin)
        self.job_id = job_id  # the one-job stream's job
        self.job_ids = frozenset(job_ids)
        self.types = frozenset(types)
        self.behind = False
        self.closed = False
        # Kept by the stream, watched by the hub's watchdog: one timer for every stream,
        # instead of a timer per write and per wait (the dominant cost at thousands of them).
        self.writing_since = 0.0  # loop time a write began; 0: not writing
        self.wake_at = math.inf  # loop time of the next heartbeat or the token's expiry
        self.timed_out = False
        self.cancel: Callable[[], None] | None = None  # ends the stream (its cancel scope)
        self._limit = limit
        self._buffer: collections.deque[Frame] = collections.deque()
        self._ready = asyncio.Event()

    def matches(self, frame: Frame) -> bool:
        return (
            (self.owner is None or frame.owner == self.owner)
            and (not self.job_ids or frame.job_id in self.job_ids)
            and (not self.types or frame.type in self.types)
        )

    def push(self, frame: Frame) -> bool:
        """Buffers the frame; True when this overflowed the buffer (the subscriber fell behind)."""
        if self.behind:
            return False
        self._ready.set()
        if len(self._buffer) >= self._limit:
            self.behind = True
            self._buffer.clear()
            return True
        self._buffer.append(frame)
        return False

    def take(self) -> list[Frame]:
        frames = list(self._buffer)
        self._buffer.clear()
        self._ready.clear()
        return frames

    def rewind(self) -> None:
        """Called before the stream reads the store: anything pushed after this is kept."""
        self.behind = False
        self._buffer.clear()
        self._ready.clear()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    async def wait(self) -> None:
        """Until something is pushed, the subscriber is closed, or `wake_at` passes."""
        if not self._ready.is_set():
            await self._ready.wait()

    def watch(self, now: float, send_timeout: float) -> None:
        if self.writing_since and now - self.writing_since > send_timeout:
            self.timed_out = True
            if self.cancel is not None:
                self.cancel()
        elif now >= self.wake_at:
            self._ready.set()


class Hub:
    """The process's live feed: one tailer, many subscribers."""

    def __init__(
        self,
        reads: ReadPool,
        gauge: Gauge,
        *,
        buffer_size: int,
        max_streams_per_owner: int,
        send_timeout: float,
        tick_seconds: float = 0.5,
        poll_seconds: float = 0.5,
    ) -> None:
        self._reads = reads
        self._gauge = gauge
        self._buffer_size = buffer_size
        self._max_per_owner = max_streams_per_owner
        self._poll = poll_seconds
        self._send_timeout = send_timeout
        self._tick = tick_seconds
        self._watchdog: asyncio.Task[None] | None = None
        self.fell_behind = 0  # times a subscriber's buffer overflowed
        self._position = 0
        self._by_job: dict[str, set[Subscriber]] = {}
        self._everyone: set[Subscriber] = set()
        self._per_owner: collections.Counter[str] = collections.Counter()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def position(self) -> int:
        """The id of the newest event the tailer has dispatched."""
        return self._position

    @property
    def listening(self) -> bool:
        """Whether any stream is open (read from the writer thread: a racy hint is enough)."""
        return bool(self._everyone or self._by_job)

    @property
    def subscribers(self) -> int:
        return sum(self._per_owner.values())

    def largest_buffer(self) -> int:
        """The most frames any subscriber holds (at most the buffer size)."""
        groups = [self._everyone, *self._by_job.values()]
        return max((s.buffered for group in groups for s in group), default=0)

    async def start(self) -> None:
        async with self._reads.connection() as conn:
            self._position = await feed.last_id(conn)
        self._task = asyncio.create_task(self._tail(), name="jobtrail-live-tailer")
        self._watchdog = asyncio.create_task(self._watch(), name="jobtrail-live-watchdog")

    def wake(self) -> None:
        """New events may be in the store. Call on the event loop's thread."""
        # With nobody listening, the poll alone keeps the position fresh: writes cost no read.
        if self._everyone or self._by_job:
            self._wakeup.set()

    def close(self) -> None:
        """Server shutdown: every stream ends cleanly, no new one starts."""
        self._closed = True
        for subscriber in [*self._everyone, *(s for g in self._by_job.values() for s in g)]:
            subscriber.close()

    async def stop(self) -> None:
        self.close()
        for task in (self._task, self._watchdog):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._watchdog = None

    def subscribe(
        self,
        principal: Principal,
        *,
        job_id: str | None = None,
        job_ids: tuple[str, ...] = (),
        types: tuple[str, ...] = (),
    ) -> Subscriber:
        if self._per_owner[principal.sub] >= self._max_per_owner:
            raise errors.TooManyStreams(self._max_per_owner)
        subscriber = Subscriber(
            sub=principal.sub,
            owner=principal.owner_filter,
            job_id=job_id,
            job_ids=job_ids,
            types=types,
            limit=self._buffer_size,
        )
        if job_id is None:
            self._everyone.add(subscriber)
        else:
            self._by_job.setdefault(job_id, set()).add(subscriber)
        self._per_owner[subscriber.sub] += 1
        self._gauge.inc()
        self._wakeup.set()  # the tailer may be in its idle poll
        if self._closed:  # shutting down: the stream ends at once, and the client reconnects
            subscriber.close()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber.job_id is None:
            self._everyone.discard(subscriber)
        else:
            group = self._by_job.get(subscriber.job_id)
            if group is None or subscriber not in group:
                return
            group.discard(subscriber)
            if not group:
                del self._by_job[subscriber.job_id]
        self._per_owner[subscriber.sub] -= 1
        if self._per_owner[subscriber.sub] <= 0:
            del self._per_owner[subscriber.sub]
        self._gauge.dec()

    async def _watch(self) -> None:
        """Heartbeats, token expiry and time-boxed writes of every stream, on one timer."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._tick)
            now = loop.time()
            for group in (self._everyone, *self._by_job.values()):
                for subscriber in group:
                    subscriber.watch(now, self._send_timeout)

    async def _tail(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wakeup.wait()
            self._wakeup.clear()
            try:
                while await self._step() == _TAIL_BATCH:
                    pass
            except Exception:  # a failed read must not end the live feed for everyone
                log.exception("the live tailer could not read new events; retrying")

    async def _step(self) -> int:
        if not self._everyone and not self._by_job:
            # Nobody listens: skip the read, just keep up with the newest id.
            async with self._reads.connection() as conn:
                newest = await feed.last_id(conn)
            # Only if still nobody listens: one who subscribed during the read may need the
            # events up to `newest`, and its own read of the store may have run before ours.
            if not self._everyone and not self._by_job:
                self._position = max(self._position, newest)
            return 0
        async with self._reads.connection() as conn:
            rows = await feed.tail(conn, after=self._position, limit=_TAIL_BATCH)
        for row in rows:
            self._dispatch(row)
        return len(rows)

    def _dispatch(self, row: feed.TailRow) -> None:
        frame = Frame(
            id=row.id,
            job_id=row.job_id,
            owner=row.owner,
            type=row.type,
            data=encode(row.id, row.type, row.document),
        )
        self._position = row.id
        for subscriber in self._by_job.get(row.job_id, ()):
            if (subscriber.owner is None or subscriber.owner == row.owner) and subscriber.push(
                frame
            ):
                self.fell_behind += 1
        for subscriber in self._everyone:
            if subscriber.matches(frame) and subscriber.push(frame):
                self.fell_behind += 1
