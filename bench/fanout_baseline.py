"""The fan-out baseline: a bare sse-starlette broadcast server. `POST /publish` encodes the
event once and puts the same bytes into every subscriber's in-memory queue; `GET /sse` streams
its queue. No auth, no store, no resume: the floor that jobtrail's live feed is measured against.

Served by `uvicorn bench.fanout_baseline:app --loop uvloop --http httptools`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_queues: set[asyncio.Queue[bytes]] = set()
_next_id = [0]


async def publish(request: Request) -> Response:
    body = await request.body()
    _next_id[0] += 1
    event_id = _next_id[0]
    document = json.dumps({"id": event_id, "data": json.loads(body)}, separators=(",", ":"))
    frame = b"id: %d\nevent: progress\ndata: %s\n\n" % (event_id, document.encode())
    for queue in _queues:
        queue.put_nowait(frame)
    return JSONResponse({"last_event_id": event_id})


async def subscribe(request: Request) -> Response:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    _queues.add(queue)

    async def frames() -> AsyncIterator[bytes]:
        try:
            while True:
                yield await queue.get()
        finally:
            _queues.discard(queue)

    return EventSourceResponse(frames(), ping=15)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "subscribers": len(_queues)})


app = Starlette(
    routes=[
        Route("/publish", publish, methods=["POST"]),
        Route("/sse", subscribe),
        Route("/healthz", healthz),
    ]
)
