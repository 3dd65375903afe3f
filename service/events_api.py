"""The events routes of API.md in their JSON form: pages of events after a cursor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from domain.job import Job
from domain.states import JobState
from projections import documents, feed, jobs_view
from service import auth, errors
from service.jobs_api import JSON, _job_id
from service.params import Params
from service.runtime import runtime

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.requests import Request

EVENT_TYPES = tuple(
    cls.kind
    for cls in (
        Job.Created,
        Job.Started,
        Job.Progressed,
        Job.Logged,
        Job.Succeeded,
        Job.Failed,
        Job.RetryScheduled,
        Job.CancelRequested,
        Job.Cancelled,
        Job.Updated,
        Job.Deleted,
    )
)


async def job_events(request: Request) -> Response:
    rt = runtime(request)
    principal = auth.authenticate(request, rt.verifier, "jobs:read")
    job_id = _job_id(request)
    params = Params(request.query_params, frozenset({"after", "limit"}))
    _refuse_stream(request)
    after, limit = _page(params)
    async with rt.reads.connection() as conn:
        # The job first: if it is finished now, every event it will have is already indexed.
        row = await jobs_view.get(conn, str(job_id), principal.owner_filter)
        if row is None and not (
            principal.is_admin and await feed.job_has_events(conn, str(job_id))
        ):
            raise errors.NotFound()
        rows = await feed.job_events(conn, str(job_id), after=after, limit=limit + 1)
    if row is not None:
        status = row.status
    else:  # deleted; only an admin gets here
        status = (await rt.in_thread(rt.store.load, job_id, None)).status
    has_more = len(rows) > limit
    rows = rows[:limit]
    tail = {
        "next_after": rows[-1].id if rows else after,
        "has_more": has_more,
        "job_status": status,
        "finished": JobState(status).is_terminal and not has_more,
    }
    return _page_response([r.document for r in rows], tail)


async def all_events(request: Request) -> Response:
    rt = runtime(request)
    principal = auth.authenticate(request, rt.verifier, "jobs:read")
    params = Params(request.query_params, frozenset({"after", "limit", "job_id", "type"}))
    _refuse_stream(request)
    after, limit = _page(params)
    job_ids = params.uuids("job_id")
    types = params.many("type", allowed=EVENT_TYPES)
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
    return _page_response([r.document for r in rows], tail)


def _page(params: Params) -> tuple[int, int]:
    after = params.integer("after", 0, 0)
    limit = params.integer("limit", 100, 1, 1000)
    assert after is not None and limit is not None
    return after, limit


def _refuse_stream(request: Request) -> None:
    if "text/event-stream" in request.headers.get("accept", ""):
        raise errors.ApiError(
            "This server does not stream events yet; page with ?after= instead.",
            details={"stream": "not supported yet"},
        )


def _page_response(items: list[str], tail: Mapping[str, Any]) -> Response:
    return Response(f'{{"items":[{",".join(items)}],{documents.dumps(tail)[1:]}', media_type=JSON)
