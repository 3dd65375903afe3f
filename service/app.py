"""`create_app(settings)`: the composition root. The routes (service/edge/routing.py), and a
lifespan that opens the store and read models and wires the writer, hub, reaper and demo."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware

from service import demo
from service.edge import api_errors, routing
from service.edge.auth import TokenVerifier
from service.edge.metrics import Metrics, MetricsMiddleware
from service.edge.runtime import Runtime
from service.jobs import batches
from service.settings import Settings
from service.store import backends, rebuild
from service.store.writer import Commit, Writer
from service.streams import hub as live
from service.workers import commands as worker_commands
from service.workers import leases
from service.workers.wakeup import ClaimSignal

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from service.store.postgres_listen import CommitListener

log = logging.getLogger("jobtrail")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    metrics = Metrics()
    verifier = TokenVerifier.from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await anyio.to_thread.run_sync(backends.open_store, settings)
        applied = await anyio.to_thread.run_sync(rebuild.catch_up, store)
        if applied:
            log.info("read models caught up by %d events", applied)
        writer = Writer(
            store,
            cache_size=settings.aggregate_cache_size,
            max_batch=settings.max_batch,
            snapshot_interval=settings.snapshot_interval,
            policy=batches.follow,
        )

        def count(commit: Commit) -> None:
            metrics.batch_size.observe(commit.commands)
            metrics.events.inc(commit.events)

        writer.on_commit(count)
        listener: CommitListener | None = None

        def hears_others() -> bool:  # whether commits of other processes wake claimers
            if listener is not None:
                return listener.connected
            return settings.workers == 1  # one process writes: every commit is its own

        claims = ClaimSignal(asyncio.get_running_loop(), hears_others)
        metrics.claims_waiting.set_function(lambda: claims.waiting)
        writer.on_commit(claims.committed)
        writer.start()
        reads = backends.read_pool(settings)
        await reads.open()
        hub = live.Hub(
            reads,
            metrics.sse_subscribers,
            buffer_size=settings.sse.buffer_events,
            max_streams_per_owner=settings.sse.max_per_owner,
            send_timeout=settings.sse.send_timeout_seconds,
            tick_seconds=min(0.5, settings.sse.heartbeat_seconds / 4),
            poll_seconds=settings.sse.poll_seconds,
        )
        await hub.start()
        loop = asyncio.get_running_loop()

        def wake(_: Commit) -> None:  # from the writer thread: the hub lives on the loop
            if hub.listening:  # else no hop to the loop: a new subscriber wakes the tailer
                loop.call_soon_threadsafe(hub.wake)

        writer.on_commit(wake)

        def elsewhere() -> None:  # another instance committed (on the loop)
            if hub.listening:
                hub.wake()
            claims.elsewhere()

        listener = backends.commit_listener(settings, store, elsewhere)
        if listener is not None:
            await listener.start()
        app.state.runtime = Runtime(
            settings=settings,
            store=store,
            writer=writer,
            reads=reads,
            verifier=verifier,
            metrics=metrics,
            store_limiter=anyio.CapacityLimiter(4),
            claims=claims,
            hub=hub,
        )
        reaper = leases.Reaper(
            writer, reads, worker_commands.retry_policy(settings),
            settings.lease_reaper_interval, metrics.leases_expired.inc,
        )  # fmt: skip
        reaper.start()
        try:
            async with contextlib.AsyncExitStack() as stack:
                if settings.demo:  # API.md: in-process demo workers only when asked
                    await stack.enter_async_context(demo.in_process(app, verifier))
                yield
        finally:
            await reaper.stop()
            if listener is not None:
                await listener.stop()
            await hub.stop()
            await anyio.to_thread.run_sync(writer.stop)
            await reads.close()
            store.close()

    return Starlette(
        routes=routing.routes(),
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
        exception_handlers=api_errors.handlers(),
        lifespan=lifespan,
    )
