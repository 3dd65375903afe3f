"""Running the service: `jobtrail serve`, `worker`, `token` and `projections rebuild`.

The server's modules are imported by the commands that need them: the client commands of
`jobtrail` start without loading the web stack or the event store.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
from typing import Any

import click

from service.cli import options
from service.settings import redacted


@click.command()
@click.option("--host", default=None, help="Interface to listen on [env JOBTRAIL_HOST; 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [env JOBTRAIL_PORT; 8000].")
@click.option("--print-token", is_flag=True, help="Print a dev token (admin) for this server.")
@click.option("--demo", is_flag=True, help="Run in-process workers for the demo.* job types.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Server processes on the one database [env JOBTRAIL_WORKERS; 1].",
)
def serve(
    host: str | None, port: int | None, print_token: bool, demo: bool, workers: int | None
) -> None:
    """Start the HTTP service (SQLite in ./data/ unless JOBTRAIL_DATABASE_URL says otherwise)."""

    from service.app import create_app
    from service.edge.auth import TokenVerifier
    from service.edge.connections import ServerConfig
    from service.streams import sse

    settings = options.settings()
    settings = dataclasses.replace(
        settings,
        host=host or settings.host,
        port=port if port is not None else settings.port,
        demo=demo or settings.demo,
        workers=workers or settings.workers,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per worker call is noise
    url = f"http://{settings.host}:{settings.port}"
    click.echo(f"jobtrail listening on {url}  (database: {redacted(settings.database_url)})")
    if print_token:
        token = TokenVerifier.from_settings(settings).issue(
            "dev", ("jobs:read", "jobs:write", "worker", "admin"), 24 * 3600
        )
        click.echo(f"dashboard (signs you in as dev, admin, for 24 h):\n  {url}/?token={token}")
        click.echo(f"dev token:\n  export TOKEN={token}")
        click.echo(f'  curl -H "Authorization: Bearer $TOKEN" {url}/api/v1/jobs')
    # Start-up objects live as long as the process: keep the collector from rescanning them,
    # and collect the young generation less often (shorter, rarer pauses: a lower p99).
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    server_options: dict[str, Any] = dict(
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,  # it could record ?access_token=
        limits=settings.limits,  # the connection guards (service/edge/connections.py)
        timeout_graceful_shutdown=settings.shutdown_seconds,
    )
    if settings.workers == 1:
        sse.Server(ServerConfig(create_app(settings), **server_options)).run()
        return
    # Each process builds its app from the environment: hand it what the options changed.
    os.environ.update(
        JOBTRAIL_HOST=settings.host,
        JOBTRAIL_PORT=str(settings.port),
        JOBTRAIL_DEMO="1" if settings.demo else "",
        JOBTRAIL_WORKERS=str(settings.workers),
    )
    config = ServerConfig(
        "service.app:create_app", factory=True, workers=settings.workers, **server_options
    )
    sse.run_processes(config)


@click.command()
@click.option(
    "--handlers",
    "handlers_ref",
    required=True,
    help="module:object, a mapping of job type to async handler (e.g. service.demo:HANDLERS).",
)
@click.option("--url", default=None, help="The server [http://JOBTRAIL_HOST:JOBTRAIL_PORT].")
@click.option(
    "--token",
    "token_value",
    envvar="JOBTRAIL_TOKEN",
    default=None,
    help="A worker-scope token [env JOBTRAIL_TOKEN; else signed with the configured secret].",
)
@click.option("--concurrency", type=int, default=4, show_default=True, help="Jobs at once.")
@click.option("--lease", type=float, default=30.0, show_default=True, help="Lease seconds.")
@click.option(
    "--grace",
    type=float,
    default=10.0,
    show_default=True,
    help="On SIGTERM, seconds for running jobs to finish before they are given back.",
)
def worker(
    handlers_ref: str,
    url: str | None,
    token_value: str | None,
    concurrency: int,
    lease: float,
    grace: float,
) -> None:
    """Run a worker: claim jobs of the handlers' types and run them; stops on SIGTERM."""
    from service.edge.auth import TokenVerifier
    from service.sdk import runner

    settings = options.settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per worker call is noise
    try:
        handlers = runner.load_handlers(handlers_ref)
    except (ImportError, AttributeError, ValueError, TypeError) as exc:
        raise click.UsageError(f"--handlers {handlers_ref}: {exc}") from exc
    if token_value is None:
        token_value = TokenVerifier.from_settings(settings).issue(
            "worker", ("worker",), 7 * 24 * 3600
        )
    runner.run(
        url or f"http://{settings.host}:{settings.port}",
        token_value,
        handlers,
        concurrency=concurrency,
        lease_seconds=lease,
        grace_seconds=grace,
    )


@click.command()
@click.option("--sub", required=True, help="The user id: becomes the owner of the jobs it creates.")
@click.option(
    "--scope", default="jobs:read jobs:write", show_default=True, help="Space-separated scopes."
)
@click.option("--ttl", type=int, default=3600, show_default=True, help="Lifetime in seconds.")
def token(sub: str, scope: str, ttl: int) -> None:
    """Print a token signed with the configured secret."""
    from service.edge.auth import TokenVerifier

    try:
        click.echo(TokenVerifier.from_settings(options.settings()).issue(sub, scope.split(), ttl))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


@click.group()
def projections() -> None:
    """Maintain the read models."""


@projections.command("rebuild")
def projections_rebuild() -> None:
    """Rebuild the read models from event 0 (stop the service first)."""
    from service.store import backends, rebuild

    store = backends.open_store(options.settings())
    try:
        applied = rebuild.rebuild(store)
    finally:
        store.close()
    click.echo(f"rebuilt the read models from {applied} events")
