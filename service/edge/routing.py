"""The route table: every path of API.md and its handlers, one `Route` per path."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from service.dashboard import pages
from service.edge import api_errors as errors
from service.edge.routes import events as events_api
from service.edge.routes import jobs as jobs_api
from service.edge.routes import ops
from service.edge.routes import session as session_api
from service.edge.routes import workers as workers_api

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request
    from starlette.responses import Response

    Endpoint = Callable[[Request], Awaitable[Response]]


def routes() -> list[Route]:
    dashboard = pages.Dashboard.load()
    # Starlette tries the routes in order, a regular expression each: the busiest first
    # (no two paths here can match the same request, so the order changes nothing else).
    return [
        _route("/api/v1/jobs", POST=jobs_api.create_job, GET=jobs_api.list_jobs),
        *[
            _route(f"/api/v1/jobs/{{job_id}}/{name}", POST=handler)
            for name, handler in workers_api.JOB_ROUTES.items()
        ],
        _route("/api/v1/workers/claim", POST=workers_api.claim),
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
        _route("/api/v1/events", GET=events_api.all_events),
        _route(
            "/api/v1/session",
            POST=session_api.create_session,
            GET=session_api.get_session,
            DELETE=session_api.delete_session,
        ),
        _route("/healthz", GET=ops.healthz),
        _route("/readyz", GET=ops.readyz),
        _route("/metrics", GET=ops.metrics),
        _route("/openapi.json", GET=ops.openapi_json),
        _route("/", GET=dashboard.index),
        _route("/jobs/{job_id}", GET=dashboard.job_page),
        _route("/static/{name}", GET=dashboard.asset),
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
