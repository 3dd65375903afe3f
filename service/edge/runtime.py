"""What a running app holds: built in the lifespan, kept on `app.state`, never at import."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread

if TYPE_CHECKING:
    from collections.abc import Callable

    import anyio
    from starlette.requests import Request

    from projections.reads import ReadPool
    from service.edge.auth import TokenVerifier
    from service.edge.metrics import Metrics
    from service.settings import Settings
    from service.store.base import EventStore
    from service.store.writer import Writer
    from service.streams.hub import Hub
    from service.workers.wakeup import ClaimSignal

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Runtime:
    settings: Settings
    store: EventStore
    writer: Writer
    reads: ReadPool
    verifier: TokenVerifier
    metrics: Metrics
    store_limiter: anyio.CapacityLimiter
    hub: Hub
    # Wakes long-polling claimers on commits (service/edge/routes/workers.py).
    claims: ClaimSignal | None = None

    async def in_thread(self, function: Callable[..., T], *args: Any) -> T:
        """Runs a blocking event-store call off the event loop."""
        return await anyio.to_thread.run_sync(function, *args, limiter=self.store_limiter)


def runtime(request: Request) -> Runtime:
    value = request.app.state.runtime
    assert isinstance(value, Runtime)
    return value
