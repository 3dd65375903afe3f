"""Operations routes (no auth): liveness, readiness, metrics, the OpenAPI document."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.responses import JSONResponse, Response

from projections import feed
from service.edge.runtime import runtime
from service.openapi import document

if TYPE_CHECKING:
    from starlette.requests import Request

log = logging.getLogger("jobtrail")


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    rt = runtime(request)
    try:
        last_event_id = await rt.in_thread(rt.store.max_position)
        async with rt.reads.connection() as conn:
            position = await feed.tracking_position(conn)
    except Exception:  # Any failure to read means: not ready.
        log.warning("readiness check failed", exc_info=True)
        unavailable = {"status": "unavailable", "projection_lag": None, "last_event_id": None}
        return JSONResponse(unavailable, status_code=503)
    lag = max(last_event_id - position, 0)
    return JSONResponse({"status": "ok", "projection_lag": lag, "last_event_id": last_event_id})


async def metrics(request: Request) -> Response:
    return Response(
        runtime(request).metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


async def openapi_json(_: Request) -> Response:
    return JSONResponse(document.document())
