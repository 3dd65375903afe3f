"""Demo job types for `jobtrail serve --demo`: handlers of the worker SDK, run in-process.

demo.count   payload {"to": 20, "delay": 0.5}: counts to N with progress and log lines
demo.fail    payload {"message": "…", "retry": true}: fails (retried while attempts last)
demo.batch   payload {"items": 5}: works through items, reporting total/completed/failed
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import httpx

from service.sdk.client import AsyncClient
from service.sdk.worker import Failure, JobContext, Worker

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.types import ASGIApp

    from service.edge.auth import TokenVerifier

_MAX_STEPS = 10_000


def _number(payload: Any, key: str, default: float, low: float, high: float) -> float:
    value = payload.get(key, default) if isinstance(payload, dict) else default
    if not isinstance(value, int | float) or isinstance(value, bool):
        return default
    return min(max(float(value), low), high)


async def count(job: JobContext) -> dict[str, int]:
    to = int(_number(job.payload, "to", 10, 1, _MAX_STEPS))
    delay = _number(job.payload, "delay", 0.5, 0, 60)
    await job.log(f"Counting to {to}.")
    for n in range(1, to + 1):
        await job.checkpoint()
        await asyncio.sleep(delay)
        await job.progress(percent=round(100 * n / to, 2), completed=n, total=to, stage="counting")
        if n % max(to // 5, 1) == 0:
            await job.log(f"Reached {n}.", data={"n": n})
    await job.log("Done.", level="success")
    job.result_type = "count"
    return {"counted": to}


async def fail(job: JobContext) -> None:
    payload = job.payload if isinstance(job.payload, dict) else {}
    await job.log("About to fail.", level="warning")
    await asyncio.sleep(_number(payload, "delay", 0.5, 0, 60))
    message = payload.get("message")
    raise Failure(
        message if isinstance(message, str) and message else "The demo failed, as asked.",
        code="demo_failure",
        retry=payload.get("retry", True) is not False,
    )


async def batch(job: JobContext) -> dict[str, int]:
    items = int(_number(job.payload, "items", 5, 1, 1000))
    delay = _number(job.payload, "delay", 0.3, 0, 60)
    failed = 0
    for n in range(1, items + 1):
        await job.checkpoint()
        await asyncio.sleep(delay)
        if n % 7 == 0:
            failed += 1
            await job.log(f"Item {n} failed.", level="error")
        await job.progress(total=items, completed=n - failed, failed=failed, stage="items")
    return {"items": items, "failed": failed}


HANDLERS = {"demo.count": count, "demo.fail": fail, "demo.batch": batch}


@contextlib.asynccontextmanager
async def in_process(
    app: ASGIApp, verifier: TokenVerifier, concurrency: int = 4
) -> AsyncIterator[Worker]:
    """Runs the demo handlers against `app` itself, through the same HTTP protocol."""
    token = verifier.issue("demo-worker", ["worker"], 365 * 24 * 3600)
    transport = httpx.ASGITransport(app=app)
    async with AsyncClient("http://jobtrail.local", token, transport=transport) as client:
        worker = Worker(
            client, HANDLERS, concurrency=concurrency, worker_id="demo", grace_seconds=2
        )
        task = asyncio.create_task(worker.run())
        try:
            yield worker
        finally:
            worker.stop()
            await task
