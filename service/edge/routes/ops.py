"""Operations routes (no auth): liveness, readiness, metrics, the OpenAPI document."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import anyio
from starlette.responses import JSONResponse, Response

from projections import feed, reads
from service import errors
from service.edge.runtime import runtime
from service.openapi import document

if TYPE_CHECKING:
    from starlette.requests import Request

    from service.edge.runtime import Runtime
    from service.store.writer import Writer

log = logging.getLogger("jobtrail")

# How long /readyz waits for the writer's probe (a lock may hold it for the lock timeout).
_PROBE_WAIT_SECONDS = 1.0


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready: the store answers reads, and takes writes unless a write has found otherwise
    (the writer's `fault`, probed again here until a write commits)."""
    rt = runtime(request)
    fault = rt.writer.fault
    if fault is not None:
        fault = await _probed(rt.writer)
    numbers: dict[str, Any] = {"projection_lag": None, "last_event_id": None}
    try:
        if fault is not errors.Fault.UNREACHABLE:  # else a read waits the connect timeout
            numbers = await _numbers(rt)
    except errors.StoreUnavailable as exc:
        fault = exc.fault
    except reads.ReadsUnavailable:
        fault = errors.Fault.UNREACHABLE
    except Exception:  # Any other failure to read means: not ready.
        log.warning("readiness check failed", exc_info=True)
        fault = errors.Fault.IO_ERROR
    if fault is not None:
        return JSONResponse(
            {"status": "unavailable", "reason": str(fault), **numbers}, status_code=503
        )
    return JSONResponse({"status": "ok", **numbers})


async def _numbers(rt: Runtime) -> dict[str, Any]:
    last_event_id = await rt.in_thread(rt.store.max_position)
    async with rt.reads.connection() as conn:
        position = await feed.tracking_position(conn)
    return {"projection_lag": max(last_event_id - position, 0), "last_event_id": last_event_id}


async def _probed(writer: Writer) -> errors.Fault | None:
    """The writer's fault after its probe has committed or failed, or as it stands when the
    probe takes longer than a moment."""
    try:
        probe = asyncio.wrap_future(writer.probe())
    except RuntimeError:  # the writer has stopped (shutting down): nothing to try
        return writer.fault
    probe.add_done_callback(_retrieved)
    with anyio.move_on_after(_PROBE_WAIT_SECONDS):
        await asyncio.wait([probe])
    return writer.fault


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # its failure is the writer's `fault`; nobody else awaits it


async def metrics(request: Request) -> Response:
    return Response(
        runtime(request).metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


async def openapi_json(_: Request) -> Response:
    return JSONResponse(document.document())
