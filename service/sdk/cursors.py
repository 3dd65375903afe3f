"""Following the API's cursors, without I/O: page after page (`Walk`), and a live SSE stream
that resumes after a drop (`Follow`). The clients' loops only send and wait.

A `Follow` remembers the id of the last event it handed out. Every (re)connection sends it as
`Last-Event-ID`, so the server resumes right after it; an event at or before it is dropped,
should one ever come twice. The one-job stream is over at `event: end` (the final job) or a
204 (finished, nothing left); any other end of a stream is a drop, and the client reconnects,
backing off, until `reconnect_timeout` seconds pass without a working connection.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from service.sdk import calls, errors
from service.sdk.models import Event, EventPage, Job, JobPage

if TYPE_CHECKING:
    import httpx
    from httpx_sse import ServerSentEvent

P = TypeVar("P")
I = TypeVar("I")  # noqa: E741

_FIRST_DELAY = 0.05


@dataclass(frozen=True, slots=True)
class Walk(Generic[P, I]):
    """The first page's call, the call of the page after a page (None: the last), and the
    items of a page."""

    first: calls.Call[P]
    after: Callable[[P], calls.Call[P] | None]
    items: Callable[[P], Iterable[I]]


def jobs(**filters: Any) -> Walk[JobPage, Job]:
    """Every job matching the filters of `list_jobs` (not `cursor`), following `next_cursor`."""

    def after(page: JobPage) -> calls.Call[JobPage] | None:
        cursor = page.next_cursor
        return None if cursor is None else calls.list_jobs(**filters, cursor=cursor)

    return Walk(calls.list_jobs(**filters), after, _items)


def events(*, after: int = 0, limit: int | None = None, **filters: Any) -> Walk[EventPage, Event]:
    """Every event after `after` the caller may see, as of now (filters: `job_id`, `type`;
    `limit`: a page's size)."""

    def following(page: EventPage) -> calls.Call[EventPage] | None:
        if not page.has_more:
            return None
        return calls.list_events(after=page.next_after, limit=limit, **filters)

    return Walk(calls.list_events(after=after, limit=limit, **filters), following, _items)


def job_events(job_id: str, *, after: int = 0, limit: int | None = None) -> Walk[EventPage, Event]:
    """Every event of one job after `after`, as of now (`limit`: a page's size)."""

    def following(page: EventPage) -> calls.Call[EventPage] | None:
        if not page.has_more:
            return None
        return calls.list_job_events(job_id, after=page.next_after, limit=limit)

    return Walk(calls.list_job_events(job_id, after=after, limit=limit), following, _items)


def _items(page: JobPage | EventPage) -> Any:
    return page.items


class Follow:
    """The state of one live stream across its connections."""

    def __init__(
        self,
        path: str,
        params: list[tuple[str, str]],
        *,
        after: int,
        reconnect_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.params = (*params, ("stream", "true"))
        self.last_id = after
        self.final: Job | None = None  # the job as its stream's `end` gave it
        self.done = False
        self.connections = 0  # streams opened, for callers that show reconnects
        self._retry = 2.0  # the server's `retry:` hint, seconds: the longest wait
        self._reconnect_timeout = reconnect_timeout
        self._clock = clock
        self._failing_since: float | None = None
        self._delay = 0.0

    def headers(self) -> dict[str, str]:
        """The request headers of the next connection."""
        headers = {"Accept": "text/event-stream"}
        if self.last_id:
            headers["Last-Event-ID"] = str(self.last_id)
        return headers

    def opened(self, response: httpx.Response) -> bool:
        """Whether the answer is a stream to read; a 204 ends the stream, an error (its body
        read) is raised as the API's error."""
        if response.status_code == 204:
            self.done = True
            return False
        if response.status_code != 200:
            raise errors.api_error(response)
        self.connections += 1
        self._failing_since = None  # the server answers: keep reconnecting, backing off
        return True

    def receive(self, message: ServerSentEvent) -> Event | None:
        """The event a message carries, if it is new; `end` finishes the stream."""
        if message.retry is not None:
            self._retry = message.retry / 1000
        if message.event == "end":
            self.final = Job.from_json(json.loads(message.data))
            self.done = True
            return None
        if not message.data:
            return None
        event = Event.from_json(json.loads(message.data))
        if event.id <= self.last_id:
            return None
        self.last_id = event.id
        self._delay = 0.0  # a stream that delivers: after a drop, reconnect at once
        return event

    def dropped(self, base_url: httpx.URL, exc: httpx.TransportError | None) -> float:
        """Seconds to wait before reconnecting after a drop (`exc` None: the server ended
        the stream); raises `TransportError` once reconnecting has failed for too long."""
        now = self._clock()
        if self._failing_since is None:
            self._failing_since = now
        elif now - self._failing_since > self._reconnect_timeout:
            if exc is None:
                raise errors.TransportError(str(base_url), "the stream keeps ending")
            raise calls.unreachable(base_url, exc) from exc
        delay = self._delay
        self._delay = min(max(self._delay * 2, _FIRST_DELAY), self._retry)
        return delay


def follow_job(job_id: str, *, after: int, reconnect_timeout: float) -> Follow:
    """A job's live events after `after`, ending when the job has finished."""
    return Follow(
        f"/api/v1/jobs/{job_id}/events", [], after=after, reconnect_timeout=reconnect_timeout
    )


def follow_all(*, after: int, reconnect_timeout: float, **filters: Any) -> Follow:
    """Every live event the caller may see after `after` (filters: `job_id`, `type`)."""
    return Follow(
        "/api/v1/events",
        calls.query(**filters),
        after=after,
        reconnect_timeout=reconnect_timeout,
    )
