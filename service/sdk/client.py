"""The jobtrail HTTP API from Python: `Client` (blocking) and `AsyncClient` (asyncio).

    with Client("http://127.0.0.1:8000", token) as client:
        job = client.create_job("video.render", payload={"script": "..."})
        for event in client.watch(job.id):      # live, resumes after a dropped connection
            print(event.type, event.data)
        print(client.wait(job.id).status)

Both flavours have the same methods; each route's request and answer are written once, in
`service/sdk/calls.py` (the method's docstring is its builder's), and only sending differs.
Results are frozen dataclasses (`service/sdk/models.py`); errors are `service/sdk/errors.py`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import httpx
from httpx_sse import EventSource

from service.sdk import calls, cursors
from service.sdk.errors import (
    ApiError,
    ConflictError,
    JobtrailError,
    LeaseLostError,
    NotFoundError,
    TransportError,
)
from service.sdk.models import Claim, Event, Job, LeaseState

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "ApiError",
    "AsyncClient",
    "Claim",
    "Client",
    "ConflictError",
    "JobtrailError",
    "LeaseLostError",
    "LeaseState",
    "NotFoundError",
    "TransportError",
]

P = ParamSpec("P")
T = TypeVar("T")
I = TypeVar("I")  # noqa: E741
PageT = TypeVar("PageT")

# A stream is silent for at most the server's heartbeat (15 s by default) between messages.
_STREAM_READ_TIMEOUT = 60.0


def _headers(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def _method(build: Callable[..., Any], method: Callable[..., Any]) -> None:
    method.__name__ = build.__name__
    method.__qualname__ = build.__qualname__
    method.__doc__ = build.__doc__


def _sync(build: Callable[P, calls.Call[T]]) -> Callable[Concatenate[Client, P], T]:
    def method(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.send(build(*args, **kwargs))

    _method(build, method)
    return method


def _async(
    build: Callable[P, calls.Call[T]],
) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]]:
    async def method(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.send(build(*args, **kwargs))

    _method(build, method)
    return method


def _sync_walk(
    build: Callable[P, cursors.Walk[Any, I]],
) -> Callable[Concatenate[Client, P], Iterator[I]]:
    def method(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[I]:
        return self._walk(build(*args, **kwargs))

    _method(build, method)
    return method


def _async_walk(
    build: Callable[P, cursors.Walk[Any, I]],
) -> Callable[Concatenate[AsyncClient, P], AsyncIterator[I]]:
    def method(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[I]:
        return self._walk(build(*args, **kwargs))

    _method(build, method)
    return method


class Client:
    """A blocking client of one jobtrail server. `token` is a JWT (the operations routes
    need none); `transport` lets tests call an app directly; `reconnect_timeout` bounds how
    long a live stream keeps trying to reconnect."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        reconnect_timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url, headers=_headers(token), timeout=timeout, transport=transport
        )
        self.reconnect_timeout = reconnect_timeout

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connections."""
        self._http.close()

    def send(self, call: calls.Call[T]) -> T:
        """Sends one call of `service.sdk.calls` and reads its answer."""
        try:
            response = self._http.request(call.method, call.path, **call.options())
        except httpx.TransportError as exc:
            raise calls.unreachable(self._http.base_url, exc) from exc
        return call.read(response)

    create_job = _sync(calls.create_job)
    list_jobs = _sync(calls.list_jobs)
    get_job = _sync(calls.get_job)
    update_job = _sync(calls.update_job)
    cancel_job = _sync(calls.cancel_job)
    cancel_newest = _sync(calls.cancel_newest)
    replay_job = _sync(calls.replay_job)
    delete_job = _sync(calls.delete_job)
    list_job_events = _sync(calls.list_job_events)
    list_events = _sync(calls.list_events)
    open_session = _sync(calls.open_session)
    close_session = _sync(calls.close_session)
    claim = _sync(calls.claim)
    heartbeat = _sync(calls.heartbeat)
    progress = _sync(calls.progress)
    log = _sync(calls.log)
    log_entries = _sync(calls.log_entries)
    succeed = _sync(calls.succeed)
    fail = _sync(calls.fail)
    cancelled = _sync(calls.cancelled)
    health = _sync(calls.health)
    readiness = _sync(calls.readiness)
    metrics = _sync(calls.metrics)
    openapi = _sync(calls.openapi)

    iter_jobs = _sync_walk(cursors.jobs)
    iter_events = _sync_walk(cursors.events)
    iter_job_events = _sync_walk(cursors.job_events)

    def watch(self, job_id: str, *, after: int = 0) -> Watch:
        """The job's events after `after`, live: the backlog, then each new event as it is
        recorded, each once and in order across reconnects; ends when the job has finished
        (then `.final` is the finished job)."""
        follow = cursors.follow_job(job_id, after=after, reconnect_timeout=self.reconnect_timeout)
        return Watch(follow, self._follow(follow))

    def watch_all(self, *, after: int = 0, **filters: Any) -> Iterator[Event]:
        """Every event the caller may see after `after`, live and without end (filters:
        `job_id`, `type`); each once and in order across reconnects."""
        follow = cursors.follow_all(
            after=after, reconnect_timeout=self.reconnect_timeout, **filters
        )
        return self._follow(follow)

    def wait(self, job_id: str) -> Job:
        """Blocks until the job has finished; returns it as it finished."""
        job = self.get_job(job_id)
        if job.finished:
            return job
        watch = self.watch(job_id, after=job.last_event_id)
        for _ in watch:
            pass
        return watch.final or self.get_job(job_id)

    def _walk(self, walk: cursors.Walk[PageT, I]) -> Iterator[I]:
        call: calls.Call[PageT] | None = walk.first
        while call is not None:
            page = self.send(call)
            yield from walk.items(page)
            call = walk.after(page)

    def _follow(self, follow: cursors.Follow) -> Iterator[Event]:
        timeout = httpx.Timeout(self._http.timeout.connect, read=_STREAM_READ_TIMEOUT)
        while not follow.done:
            error: httpx.TransportError | None = None
            try:
                with self._http.stream(
                    "GET",
                    follow.path,
                    params=follow.params,
                    headers=follow.headers(),
                    timeout=timeout,
                ) as response:
                    if response.status_code != 200:
                        response.read()
                    if follow.opened(response):
                        for message in EventSource(response).iter_sse():
                            event = follow.receive(message)
                            if event is not None:
                                yield event
            except httpx.TransportError as exc:
                error = exc
            if not follow.done:
                time.sleep(follow.dropped(self._http.base_url, error))


class _Watched:
    def __init__(self, follow: cursors.Follow) -> None:
        self._follow = follow

    @property
    def final(self) -> Job | None:
        """The finished job, from the stream's end (None before, or after a 204)."""
        return self._follow.final

    @property
    def connections(self) -> int:
        """How many times the stream was opened (1 + the reconnections)."""
        return self._follow.connections


class Watch(_Watched):
    """A job's live events (iterate it); `final` is the job once its stream has ended."""

    def __init__(self, follow: cursors.Follow, events: Iterator[Event]) -> None:
        super().__init__(follow)
        self._events = events

    def __iter__(self) -> Iterator[Event]:
        return self._events


class AsyncClient:
    """An asyncio client of one jobtrail server: `Client`'s methods, awaited."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        reconnect_timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=_headers(token), timeout=timeout, transport=transport
        )
        self.reconnect_timeout = reconnect_timeout

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the connections."""
        await self._http.aclose()

    async def send(self, call: calls.Call[T]) -> T:
        """Sends one call of `service.sdk.calls` and reads its answer."""
        try:
            response = await self._http.request(call.method, call.path, **call.options())
        except httpx.TransportError as exc:
            raise calls.unreachable(self._http.base_url, exc) from exc
        return call.read(response)

    create_job = _async(calls.create_job)
    list_jobs = _async(calls.list_jobs)
    get_job = _async(calls.get_job)
    update_job = _async(calls.update_job)
    cancel_job = _async(calls.cancel_job)
    cancel_newest = _async(calls.cancel_newest)
    replay_job = _async(calls.replay_job)
    delete_job = _async(calls.delete_job)
    list_job_events = _async(calls.list_job_events)
    list_events = _async(calls.list_events)
    open_session = _async(calls.open_session)
    close_session = _async(calls.close_session)
    claim = _async(calls.claim)
    heartbeat = _async(calls.heartbeat)
    progress = _async(calls.progress)
    log = _async(calls.log)
    log_entries = _async(calls.log_entries)
    succeed = _async(calls.succeed)
    fail = _async(calls.fail)
    cancelled = _async(calls.cancelled)
    health = _async(calls.health)
    readiness = _async(calls.readiness)
    metrics = _async(calls.metrics)
    openapi = _async(calls.openapi)

    iter_jobs = _async_walk(cursors.jobs)
    iter_events = _async_walk(cursors.events)
    iter_job_events = _async_walk(cursors.job_events)

    def watch(self, job_id: str, *, after: int = 0) -> AsyncWatch:
        """The job's events after `after`, live, each once and in order across reconnects;
        ends when the job has finished (then `.final` is the finished job)."""
        follow = cursors.follow_job(job_id, after=after, reconnect_timeout=self.reconnect_timeout)
        return AsyncWatch(follow, self._follow(follow))

    def watch_all(self, *, after: int = 0, **filters: Any) -> AsyncIterator[Event]:
        """Every event the caller may see after `after`, live and without end (filters:
        `job_id`, `type`); each once and in order across reconnects."""
        follow = cursors.follow_all(
            after=after, reconnect_timeout=self.reconnect_timeout, **filters
        )
        return self._follow(follow)

    async def wait(self, job_id: str) -> Job:
        """Waits until the job has finished; returns it as it finished."""
        job = await self.get_job(job_id)
        if job.finished:
            return job
        watch = self.watch(job_id, after=job.last_event_id)
        async for _ in watch:
            pass
        return watch.final or await self.get_job(job_id)

    async def _walk(self, walk: cursors.Walk[PageT, I]) -> AsyncIterator[I]:
        call: calls.Call[PageT] | None = walk.first
        while call is not None:
            page = await self.send(call)
            for item in walk.items(page):
                yield item
            call = walk.after(page)

    async def _follow(self, follow: cursors.Follow) -> AsyncIterator[Event]:
        timeout = httpx.Timeout(self._http.timeout.connect, read=_STREAM_READ_TIMEOUT)
        while not follow.done:
            error: httpx.TransportError | None = None
            try:
                async with self._http.stream(
                    "GET",
                    follow.path,
                    params=follow.params,
                    headers=follow.headers(),
                    timeout=timeout,
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                    if follow.opened(response):
                        async for message in EventSource(response).aiter_sse():
                            event = follow.receive(message)
                            if event is not None:
                                yield event
            except httpx.TransportError as exc:
                error = exc
            if not follow.done:
                await asyncio.sleep(follow.dropped(self._http.base_url, error))


class AsyncWatch(_Watched):
    """A job's live events (iterate it with `async for`); `final` is the job once its
    stream has ended."""

    def __init__(self, follow: cursors.Follow, events: AsyncIterator[Event]) -> None:
        super().__init__(follow)
        self._events = events

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events
