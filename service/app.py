"""`create_app(settings)`: the routes, and a lifespan that opens the store and read models."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from projections.sqlite import ReadPool
from service import (
    batches,
    demo,
    errors,
    events_api,
    jobs_api,
    leases,
    live,
    ops,
    rebuild,
    session_api,
    workers_api,
)
from service.auth import TokenVerifier
from service.metrics import Metrics, MetricsMiddleware
from service.runtime import Runtime
from service.settings import Settings
from service.store import EventStore
from service.wakeup import ClaimSignal
from service.writer import Commit, Writer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from starlette.requests import Request
    from starlette.responses import Response

    Endpoint = Callable[[Request], Awaitable[Response]]

log = logging.getLogger("jobtrail")


def routes() -> list[Route]:
    return [
        _route("/api/v1/jobs", POST=jobs_api.create_job, GET=jobs_api.list_jobs),
        _route(
            "/api/v1/jobs/{job_id}",
            GET=jobs_api.get_job,
            PATCH=jobs_api.patch_job,
            DELETE=jobs_api.delete_job,
        ),
        _route("/api/v1/jobs/{job_id}/cancel", POST=jobs_api.cancel_job),
        _route("/api/v1/jobs/{job_id}/replay", POST=jobs_api.replay_job),
        _route("/api/v1/jobs/{job_id}/events", GET=events_api.job_events),
        _route("/api/v1/cancel", POST=jobs_api.cancel_newest),
        _route("/api/v1/workers/claim", POST=workers_api.claim),
        *[
            _route(f"/api/v1/jobs/{{job_id}}/{name}", POST=handler)
            for name, handler in workers_api.JOB_ROUTES.items()
        ],
        _route("/api/v1/events", GET=events_api.all_events),
        _route(
            "/api/v1/session", POST=session_api.create_session, DELETE=session_api.delete_session
        ),
        _route("/healthz", GET=ops.healthz),
        _route("/readyz", GET=ops.readyz),
        _route("/metrics", GET=ops.metrics),
        _route("/openapi.json", GET=ops.openapi_json),
    ]


def _route(path: str, **handlers: Endpoint) -> Route:
    """One route per path, so a 405 names every allowed method in its Allow header."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        try:
            return await handlers[method](request)
        except errors.EXPECTED:
            raise  # answered by their handlers in errors.handlers()
        except Exception as exc:
            # Answered here, not by Starlette's last-resort handler, which re-raises after its
            # 500 so that the server closes the connection: one bug, not one more client hurt.
            return errors.unexpected(exc)

    return Route(path, endpoint, methods=list(handlers), name=path)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    metrics = Metrics()
    verifier = TokenVerifier.from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await anyio.to_thread.run_sync(EventStore.open, settings)
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
        claims = ClaimSignal(asyncio.get_running_loop())
        writer.on_commit(claims.committed)
        writer.start()
        reads = ReadPool(settings.sqlite_path, settings.read_connections)
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
            writer, reads, workers_api.retry_policy(app.state.runtime),
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
            await hub.stop()
            await anyio.to_thread.run_sync(writer.stop)
            await reads.close()
            store.close()

    return Starlette(
        routes=routes(),
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
        exception_handlers=errors.handlers(),
        lifespan=lifespan,
    )
