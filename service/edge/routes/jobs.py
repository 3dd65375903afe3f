"""The Jobs routes of API.md: thin handlers that parse, run a command or a query, render."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from domain.job import PRIORITIES
from domain.states import JobState
from projections import documents, feed, jobs_view
from service.contract import jobs as validation
from service.edge import api_errors as errors
from service.edge import auth, bodies, cursor, headers, replies
from service.edge.params import Params, path_job_id
from service.edge.runtime import runtime
from service.jobs import commands

if TYPE_CHECKING:
    from starlette.requests import Request

    from service.principal import Principal

_STATUSES = tuple(state.value for state in JobState)
LIST_PARAMETERS = frozenset(
    {
        "limit",
        "offset",
        "cursor",
        "sort",
        "order",
        "type",
        "status",
        "priority",
        "category",
        "owner",
        "parent_id",
        "finished",
        "starred",
        "result_type",
        "created_from",
        "created_to",
    }
)


async def create_job(request: Request) -> Response:
    rt = runtime(request)
    principal = auth.authenticate(request, rt.verifier, "jobs:write")
    key = validation.idempotency_key(headers.header(request, b"idempotency-key"))
    body, size = await bodies.read_json(request, rt.settings.limits)
    spec = validation.job_spec(body, rt.settings.limits, size)
    command = commands.create_job(
        spec,
        owner=principal.sub,
        idempotency_key=key,
        request_hash=bodies.fingerprint(body) if key is not None else None,
    )
    committed = await rt.writer.run(command)
    created = committed.value
    document = await replies.document(rt, committed, created.job_id)
    if created.replayed:
        return replies.Json(document, 200, {"Idempotent-Replayed": "true"})
    return replies.Json(document, 201, {"Location": f"/api/v1/jobs/{created.job_id}"})


async def list_jobs(request: Request) -> Response:
    rt = runtime(request)
    principal = auth.authenticate(request, rt.verifier, "jobs:read")
    params = Params(request.query_params, LIST_PARAMETERS)
    query, digest = job_query(params, principal)
    async with rt.reads.connection() as conn:
        page = await jobs_view.list_jobs(conn, query)
    next_cursor = None
    if page.next_key is not None:
        next_cursor = cursor.encode(
            page.next_key,
            sort=query.sort,
            order=query.order,
            filters=digest,
            owner=principal.owner_filter,
        )
    tail = {
        "total": page.total,
        "offset": None if query.after is not None else query.offset,
        "limit": query.limit,
        "next_cursor": next_cursor,
    }
    items = ",".join(row.document for row in page.items)
    return replies.Json(f'{{"items":[{items}],{documents.dumps(tail)[1:]}')


async def get_job(request: Request) -> Response:
    rt = runtime(request)
    principal = auth.authenticate(request, rt.verifier, "jobs:read")
    job_id = path_job_id(request)
    params = Params(request.query_params, frozenset({"include", "as_of"}))
    include = params.many("include", allowed=("logs",))
    as_of = params.integer("as_of", None, 1)
    async with rt.reads.connection() as conn:
        row = await jobs_view.get(conn, str(job_id), principal.owner_filter)
    if row is None:
        raise errors.NotFound()
    document, position = row.document, row.last_event_id
    if as_of is not None:
        if as_of > row.version:
            raise errors.InvalidRequest(
                f"The job has {row.version} events; as_of must not exceed that.",
                details={"as_of": f"must be from 1 to {row.version}"},
            )
        job = await rt.in_thread(rt.store.load, job_id, as_of)
        found = await rt.in_thread(rt.store.position_of, job_id, as_of)
        position = found or 0
        document = documents.dumps(documents.job_document(job, position))
    logs = None
    if include:  # the newest log lines up to the state shown (as_of included)
        async with rt.reads.connection() as conn:
            logs = await feed.recent_logs(conn, row.id, up_to=position)
    if logs is not None:
        document = f'{document[:-1]},"logs":[{",".join(logs)}]}}'
    return replies.Json(document)


async def patch_job(request: Request) -> Response:
    rt = runtime(request)
    principal = auth.authenticate(request, rt.verifier, "jobs:write")
    job_id = path_job_id(request)
    body, size = await bodies.read_json(request, rt.settings.limits)
    changes = validation.patch(body, rt.settings.limits, size)
    committed = await rt.writer.run(commands.update_job(job_id, principal, changes))
    return replies.Json(await replies.document(rt, committed, job_id))


async def cancel_job(request: Request) -> Response:
    rt = runtime(request)
    principal = auth.authenticate(request, rt.verifier, "jobs:write")
    job_id = path_job_id(request)
    body, _ = await bodies.read_json(request, rt.settings.limits, optional=True)
    reason = validation.cancel_reason(body)
    committed = await rt.writer.run(commands.cancel_job(job_id, principal, reason))
    return replies.Json(await replies.document(rt, committed, job_id))


async def cancel_newest(request: Request) -> Response:
    rt = runtime(request)
    principal = auth.authenticate(request, rt.verifier, "jobs:write")
    committed = await rt.writer.run(commands.cancel_newest(principal))
    document = await replies.document(rt, committed, committed.value)
    return replies.Json(f'{{"job":{document}}}')


async def replay_job(request: Request) -> Response:
    rt = runtime(request)
    principal = auth.authenticate(request, rt.verifier, "jobs:write")
    job_id = path_job_id(request)
    committed = await rt.writer.run(commands.replay_job(job_id, principal))
    new_id = committed.value.job_id
    document = await replies.document(rt, committed, new_id)
    return replies.Json(document, 201, {"Location": f"/api/v1/jobs/{new_id}"})


async def delete_job(request: Request) -> Response:
    rt = runtime(request)
    principal = auth.authenticate(request, rt.verifier, "jobs:write")
    job_id = path_job_id(request)
    await rt.writer.run(commands.delete_job(job_id, principal))
    return Response(status_code=204)


def job_query(params: Params, principal: Principal) -> tuple[jobs_view.JobQuery, str]:
    if params.has("offset") and params.has("cursor"):
        raise errors.InvalidRequest(
            "Give either offset or cursor, not both.",
            details={"offset": "not with cursor", "cursor": "not with offset"},
        )
    created_from = params.time("created_from")
    created_to = params.time("created_to")
    filters = {
        "owners": params.many("owner"),
        "types": params.many("type", pattern=validation.TYPE_PATTERN),
        "statuses": params.many("status", allowed=_STATUSES),
        "priorities": tuple(
            documents.PRIORITY_RANK[p] for p in params.many("priority", allowed=PRIORITIES)
        ),
        "categories": params.many("category", max_length=validation.MAX_CATEGORY),
        "parent_ids": params.uuids("parent_id"),
        "result_types": params.many("result_type"),
        "finished": params.boolean("finished"),
        "starred": params.boolean("starred"),
        "created_from": documents.epoch_ms(created_from) if created_from else None,
        "created_to": documents.epoch_ms(created_to) if created_to else None,
    }
    sort = params.choice("sort", tuple(jobs_view.SORT_COLUMNS), "created_at")
    order = params.choice("order", ("desc", "asc"), "desc")
    limit = params.integer("limit", 20, 1, 100)
    offset = params.integer("offset", 0, 0)
    assert limit is not None and offset is not None
    digest = cursor.filters_digest(filters)
    after = None
    raw_cursor = params.one("cursor")
    if raw_cursor is not None:
        length = len(jobs_view.SORT_COLUMNS[sort])
        owner = principal.owner_filter
        after = cursor.decode(
            raw_cursor, sort=sort, order=order, filters=digest, owner=owner, length=length
        )
    query = jobs_view.JobQuery(
        owner=principal.owner_filter,
        sort=sort,
        order=order,
        limit=limit,
        offset=offset,
        after=after,
        **filters,  # type: ignore[arg-type]
    )
    return query, digest
