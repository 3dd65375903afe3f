"""Handlers for the SDK tests, importable by a `jobtrail worker` subprocess."""

from __future__ import annotations

import asyncio
from typing import Any

from service.sdk.worker import Failure, JobContext


async def echo(job: JobContext) -> Any:
    await job.progress(percent=100)
    return job.payload


async def boom(job: JobContext) -> None:
    raise ValueError("the payload was bad")


async def refuse(job: JobContext) -> None:
    raise Failure("never works", code="refused", retry=False)


async def slow(job: JobContext) -> dict[str, int]:
    seconds = float(job.payload.get("seconds", 1)) if isinstance(job.payload, dict) else 1.0
    steps = 0
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        await job.checkpoint()
        await job.progress(completed=steps)
        steps += 1
        await asyncio.sleep(0.05)
    return {"steps": steps}


async def hang_first(job: JobContext) -> str:
    """The first attempt never ends (its worker gets killed); later ones succeed."""
    if job.attempt == 1:
        await job.log("hanging")
        await asyncio.sleep(3600)
    return "done"


HANDLERS = {
    "sdk.echo": echo,
    "sdk.boom": boom,
    "sdk.refuse": refuse,
    "sdk.slow": slow,
    "sdk.hang": hang_first,
}


async def deaf(job: JobContext) -> str:
    """Never looks at its checkpoint."""
    await asyncio.sleep(3600)
    return "never"


HANDLERS["sdk.deaf"] = deaf
