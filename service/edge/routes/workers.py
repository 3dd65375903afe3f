"""The Workers routes of API.md: claim, then heartbeat, progress, logs and the outcome."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from projections import claims, documents
from service.contract import workers as worker_validation
from service.edge import api_errors as errors
from service.edge import auth, bodies, headers, replies
from service.edge.params import path_job_id
from service.edge.runtime import Runtime, runtime
from service.workers import commands as worker_commands

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request

    from service.store.unit_of_work import UnitOfWork
    from service.workers.commands import LeaseState

SCOPE = "worker"


async def claim(request: Request) -> Response:
    rt = runtime(request)
    auth.authenticate(request, rt.verifier, SCOPE)
    body, _ = await bodies.read_json(request, rt.settings.limits)
    ask = worker_validation.claim(body)
    command = worker_commands.claim(ask.types, ask.worker_id, ask.lease_seconds)
    deadline = time.monotonic() + ask.wait_seconds
    signal = rt.claims
    assert signal is not None
    signal.waiting += 1
    gone: asyncio.Future[Any] | None = None
    try:
        while True:
            woken = signal.current()
            if signal.closed:  # shutting down: nothing is claimed any more
                return Response(status_code=204)
            committed = await rt.writer.run(command)
            claimed = committed.value
            if claimed is not None:
                rt.metrics.claims.labels("claimed").inc()
                document = await replies.document(rt, committed, claimed.job_id)
                lease = {
                    "token": claimed.token,
                    "expires_at": documents.format_time(claimed.expires_at),
                }
                body_text = f'{{"job":{document},"lease":{documents.dumps(lease)}}}'
                return replies.Json(body_text)
            left = deadline - time.monotonic()
            if left <= 0:
                rt.metrics.claims.labels("empty").inc()
                return Response(status_code=204)
            due = await _next_due(rt, ask.types)
            if due is not None:
                left = min(left, max(due, 0.001))
            # A job made by another process wakes claimers here only where the database
            # tells (PostgreSQL's LISTEN, while connected); else look again after a short poll.
            if not signal.hears_others():
                left = min(left, rt.settings.sse.poll_seconds)
            # The body has been read: the next message is the client's disconnect. A claimer
            # that has gone must not claim (it would hold a job until its lease lapsed).
            gone = gone or asyncio.ensure_future(request.receive())
            wake = asyncio.ensure_future(woken.wait())
            await asyncio.wait({wake, gone}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            wake.cancel()
            if gone.done():
                return Response(status_code=204)
    finally:
        signal.waiting -= 1
        if gone is not None:
            gone.cancel()


async def _next_due(rt: Runtime, types: tuple[str, ...]) -> float | None:
    """Seconds until the earliest scheduled job of these types is due, if there is one."""
    now_ms = documents.epoch_ms(datetime.now(UTC))
    async with rt.reads.connection() as conn:
        due = await claims.next_run_at(conn, types, now_ms)
    return None if due is None else (due - now_ms) / 1000 + 0.001


def _lease_token(request: Request) -> str:
    token = headers.header(request, b"job-lease")
    if not token:  # a request without its lease is malformed (a wrong lease is a 409)
        raise errors.InvalidRequest(
            "The Job-Lease header is required.", details={"Job-Lease": "required"}
        )
    return token


def _lease_answer(state: LeaseState) -> Response:
    # Written out: a boolean and a time (digits, '-', ':', '.', 'T', 'Z'), nothing to escape.
    cancel = "true" if state.cancel_requested else "false"
    expires = state.lease_expires_at
    when = f'"{documents.format_time(expires)}"' if expires is not None else "null"
    return replies.Json(f'{{"cancel_requested":{cancel},"lease_expires_at":{when}}}')


async def heartbeat(request: Request) -> Response:
    rt = runtime(request)
    auth.authenticate(request, rt.verifier, SCOPE)
    job_id, token = path_job_id(request), _lease_token(request)
    committed = await rt.writer.run(worker_commands.heartbeat(job_id, token))
    return _lease_answer(committed.value)


async def progress(request: Request) -> Response:
    rt = runtime(request)
    auth.authenticate(request, rt.verifier, SCOPE)
    job_id, token = path_job_id(request), _lease_token(request)
    body, _ = await bodies.read_json(request, rt.settings.limits)
    fields = worker_validation.progress(body)
    committed = await rt.writer.run(worker_commands.progress(job_id, token, fields))
    return _lease_answer(committed.value)


async def logs(request: Request) -> Response:
    rt = runtime(request)
    auth.authenticate(request, rt.verifier, SCOPE)
    job_id, token = path_job_id(request), _lease_token(request)
    body, size = await bodies.read_json(request, rt.settings.limits)
    entries = worker_validation.log_entries(body, rt.settings.limits, size)
    committed = await rt.writer.run(worker_commands.logs(job_id, token, entries))
    return _lease_answer(committed.value)


async def succeed(request: Request) -> Response:
    rt = runtime(request)
    auth.authenticate(request, rt.verifier, SCOPE)
    job_id, token = path_job_id(request), _lease_token(request)
    body, size = await bodies.read_json(request, rt.settings.limits, optional=True)
    result, result_type = worker_validation.success(body, rt.settings.limits, size)
    command = worker_commands.succeed(job_id, token, result, result_type)
    return await _final(rt, job_id, command)


async def fail(request: Request) -> Response:
    rt = runtime(request)
    auth.authenticate(request, rt.verifier, SCOPE)
    job_id, token = path_job_id(request), _lease_token(request)
    body, size = await bodies.read_json(request, rt.settings.limits, optional=True)
    error, retry_allowed = worker_validation.failure(body, rt.settings.limits, size)
    command = worker_commands.fail(
        job_id, token, error, retry_allowed, worker_commands.retry_policy(rt.settings)
    )
    return await _final(rt, job_id, command)


async def cancelled(request: Request) -> Response:
    rt = runtime(request)
    auth.authenticate(request, rt.verifier, SCOPE)
    job_id, token = path_job_id(request), _lease_token(request)
    return await _final(rt, job_id, worker_commands.acknowledge_cancel(job_id, token))


async def _final(
    rt: Runtime, job_id: uuid.UUID, command: Callable[[UnitOfWork], uuid.UUID]
) -> Response:
    committed = await rt.writer.run(command)
    return replies.Json(await replies.document(rt, committed, job_id))


JOB_ROUTES = {  # the busiest first: the router tries them in this order
    "progress": progress,
    "heartbeat": heartbeat,
    "logs": logs,
    "succeed": succeed,
    "fail": fail,
    "cancelled": cancelled,
}
