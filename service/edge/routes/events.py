"""The events routes of API.md: pages of events after a cursor (JSON), or a live stream (SSE)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from domain import job as domain_job
from domain.states import JobState
from projections import documents, feed, jobs_view
from service.edge import api_errors as errors
from service.edge import auth, bodies, replies
from service.edge.params import Params, path_job_id
from service.edge.runtime import runtime
from service.streams import hub as live
from service.streams import sse

if TYPE_CHECKING:
    import uuid

    from starlette.requests import Request

    from service.edge.runtime import Runtime
    from service.principal import Principal

_PAGING = frozenset({"after", "limit", "stream", auth.QUERY_PARAMETER})
_JOB_PARAMS = _PAGING
_ALL_PARAMS = _PAGING | {"job_id", "type"}


async def job_events(request: Request) -> Response:
    rt = runtime(request)
    streaming = _streaming(request)
    principal = auth.authenticate(request, rt.verifier, "jobs:read", stream=streaming)
    job_id = path_job_id(request)
    params = Params(request.query_params, _JOB_PARAMS)
    after, limit = _page(request, params)
    if streaming:
        return await _job_stream(rt, principal, job_id, after)
    async with rt.reads.connection() as conn:
        # The job first: if it is finished now, every event it will have is already indexed.
        row = await jobs_view.get(conn, str(job_id), principal.owner_filter)
        if row is None and not (
            principal.is_admin and await feed.job_has_events(conn, str(job_id))
        ):
            raise errors.NotFound()
        rows = await feed.job_events(conn, str(job_id), after=after, limit=limit + 1)
    if row is not None:
        status, ended = row.status, JobState(row.status).is_terminal
    else:  # deleted (its history is over, as its stream says); only an admin gets here
        status, ended = (await rt.in_thread(rt.store.load, job_id, None)).status, True
    has_more = len(rows) > limit
    rows = rows[:limit]
    tail = {
        "next_after": rows[-1].id if rows else after,
        "has_more": has_more,
        "job_status": status,
        "finished": ended and not has_more,
    }
    return replies.page_response([r.document for r in rows], tail)


async def all_events(request: Request) -> Response:
    rt = runtime(request)
    streaming = _streaming(request)
    principal = auth.authenticate(request, rt.verifier, "jobs:read", stream=streaming)
    params = Params(request.query_params, _ALL_PARAMS)
    after, limit = _page(request, params)
    job_ids = params.uuids("job_id")
    types = params.many("type", allowed=domain_job.EVENT_KINDS)
    if streaming:
        return _all_stream(rt, principal, after, job_ids, types)
    async with rt.reads.connection() as conn:
        rows = await feed.events_after(
            conn,
            owner=principal.owner_filter,
            after=after,
            limit=limit + 1,
            job_ids=job_ids,
            types=types,
        )
    has_more = len(rows) > limit
    rows = rows[:limit]
    tail = {"next_after": rows[-1].id if rows else after, "has_more": has_more}
    return replies.page_response([r.document for r in rows], tail)


def _page(request: Request, params: Params) -> tuple[int, int]:
    """Where the page or stream starts, and the page size. On both forms, as the one operation
    documents it: a malformed `Last-Event-ID` is a 400, and a valid one wins over `after`."""
    after = params.integer("after", 0, 0)
    limit = params.integer("limit", 100, 1, 1000)
    params.boolean("stream")  # validated here, read by _streaming before authentication
    assert after is not None and limit is not None
    return _start(request, after), limit


def _streaming(request: Request) -> bool:
    """The SSE form: `Accept: text/event-stream`, or `?stream=true` for clients that cannot
    set headers. The value of `stream` is validated by `Params` (it must be true or false)."""
    if request.method == "HEAD":  # headers only: a stream would never end
        return False
    flag = request.query_params.get("stream", "").lower()
    if flag in ("true", "false"):
        return flag == "true"
    return sse.MEDIA_TYPE in request.headers.get("accept", "")


def _start(request: Request, after: int) -> int:
    """`Last-Event-ID` wins over `after`: a reconnecting `EventSource` resumes where it was."""
    raw = request.headers.get("last-event-id")
    if raw is None or not raw.strip():
        return after
    value = raw.strip()
    # Length first: int() of thousands of digits is slow, and refused past 4,300.
    digits = len(value) <= 20 and value.isascii() and value.isdigit()
    if not digits or int(value) > bodies.MAX_INTEGER:
        raise errors.InvalidRequest(
            "Invalid Last-Event-ID header: must be an event id.",
            details={"Last-Event-ID": "must be an integer from 0"},
        )
    return int(value)


async def _job_stream(rt: Runtime, principal: Principal, job_id: uuid.UUID, start: int) -> Response:
    key = str(job_id)
    async with rt.reads.connection() as conn:
        row = await jobs_view.get(conn, key, principal.owner_filter)
        if row is None and not (principal.is_admin and await feed.job_has_events(conn, key)):
            raise errors.NotFound()
        finished = row is None or JobState(row.status).is_terminal  # None: deleted
        if finished and not await feed.job_events(conn, key, after=start, limit=1):
            return Response(status_code=204)  # this stops EventSource from reconnecting

    async def page(after: int, limit: int) -> list[feed.EventRow]:
        async with rt.reads.connection() as conn:
            return await feed.job_events(conn, key, after=after, limit=limit)

    async def ending(last: int) -> str | None:
        """The final Job once the job is terminal (or deleted) and nothing is left to send."""
        async with rt.reads.connection() as conn:
            row = await jobs_view.get(conn, key, None)  # first: then the events are all in
            if row is not None and not JobState(row.status).is_terminal:
                return None
            if await feed.job_events(conn, key, after=last, limit=1):
                return None
        if row is not None:
            return row.document
        job = await rt.in_thread(rt.store.load, job_id, None)
        return documents.dumps(documents.job_document(job, last))

    subscriber = rt.hub.subscribe(principal, job_id=key)
    return _stream(rt, principal, subscriber, start, page, ending)


def _all_stream(
    rt: Runtime,
    principal: Principal,
    start: int,
    job_ids: tuple[str, ...],
    types: tuple[str, ...],
) -> Response:
    async def page(after: int, limit: int) -> list[feed.EventRow]:
        async with rt.reads.connection() as conn:
            return await feed.events_after(
                conn,
                owner=principal.owner_filter,
                after=after,
                limit=limit,
                job_ids=job_ids,
                types=types,
            )

    subscriber = rt.hub.subscribe(principal, job_ids=job_ids, types=types)
    return _stream(rt, principal, subscriber, start, page, None)


def _stream(
    rt: Runtime,
    principal: Principal,
    subscriber: live.Subscriber,
    start: int,
    page: sse.Page,
    ending: sse.Ending | None,
) -> Response:
    config = rt.settings.sse
    return sse.EventStream(
        hub=rt.hub,
        subscriber=subscriber,
        start=start,
        page=page,
        ending=ending,
        expires_at=principal.expires_at,
        heartbeat=config.heartbeat_seconds,
        send_timeout=config.send_timeout_seconds,
        retry_ms=config.retry_ms,
    )
