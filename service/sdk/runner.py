"""`jobtrail worker`: loads the handlers and runs the SDK's `Worker` until SIGTERM."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from service.sdk.client import AsyncClient
from service.sdk.worker import Worker

if TYPE_CHECKING:
    from service.sdk.worker import Handler


def load_handlers(reference: str) -> dict[str, Handler]:
    """`module:object`: a mapping of job type → async handler."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ValueError("expected module:object")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    if not isinstance(value, Mapping) or not value:
        raise TypeError("not a non-empty mapping of job type to handler")
    if not all(isinstance(k, str) and callable(v) for k, v in value.items()):
        raise TypeError("every key must be a job type and every value a handler")
    return dict(value)


def run(
    url: str,
    token: str,
    handlers: Mapping[str, Handler],
    *,
    concurrency: int,
    lease_seconds: float,
    grace_seconds: float,
) -> None:
    async def main() -> None:
        async with AsyncClient(url, token) as client:
            worker = Worker(
                client,
                handlers,
                concurrency=concurrency,
                lease_seconds=lease_seconds,
                grace_seconds=grace_seconds,
            )
            await worker.run_until_signalled()

    asyncio.run(main())
