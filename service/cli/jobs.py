"""The job commands of a client: `create`, `list`, `get`, `cancel`, `replay`, `delete`.

Each talks to a server over HTTP (`--url`, `--token`); `--json` prints the API's JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import click

from service.cli import options, render

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.sdk.client import Client

F = TypeVar("F", bound="Callable[..., Any]")

_PRIORITIES = click.Choice(["low", "normal", "high"])


@click.command()
@click.argument("job_type")
@click.option("--payload", type=options.JsonParam(), help="The payload, as JSON.")
@click.option("--name", help="A name for people (1-200 characters).")
@click.option("--category", help="A category to filter on.")
@click.option("--priority", type=_PRIORITIES, help="Claim order [normal].")
@click.option("--metadata", type=options.JsonParam(), help="A JSON object.")
@click.option("--max-attempts", type=int, help="Attempts before it fails [1].")
@click.option("--run-at", help="Not before: RFC 3339 or epoch milliseconds.")
@click.option("--children", type=options.JsonParam(), help="A JSON list of job bodies: a batch.")
@click.option("--idempotency-key", help="The same key and body create the job only once.")
@options.json_output
@options.connection
def create(client: Client, job_type: str, as_json: bool, **fields: Any) -> None:
    """Create a job of type JOB_TYPE; print its id."""
    job = client.create_job(job_type, **fields)
    if as_json:
        options.echo_json(job.raw)
    else:
        click.echo(job.id)


def _many(name: str, text: str) -> Callable[[F], F]:
    return click.option(name, multiple=True, help=f"{text} (repeat or comma-separate).")


@click.command("list")
@_many("--type", "Job types")
@_many("--status", "pending, running, succeeded, failed, cancelled")
@_many("--priority", "low, normal, high")
@_many("--category", "Categories")
@_many("--owner", "Owners (admin)")
@_many("--parent-id", "Batch parents' ids")
@_many("--result-type", "Result types")
@click.option("--finished/--unfinished", default=None, help="Only finished (or unfinished) jobs.")
@click.option("--starred/--not-starred", default=None, help="Only starred (or unstarred) jobs.")
@click.option("--created-from", help="Created at or after (RFC 3339 or epoch ms).")
@click.option("--created-to", help="Created before (RFC 3339 or epoch ms).")
@click.option("--sort", type=click.Choice(["created_at", "updated_at", "finished_at", "priority"]))
@click.option("--order", type=click.Choice(["desc", "asc"]))
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), help="Skip this many jobs.")
@click.option("--cursor", help="The `next` cursor a previous page printed.")
@click.option("--all", "every", is_flag=True, help="Every matching job, page after page.")
@options.json_output
@options.connection
def list_(client: Client, as_json: bool, every: bool, **filters: Any) -> None:
    """List jobs, newest first: a table (or the API's page with --json).

    With --all, every matching job (as NDJSON, one Job a line, with --json).
    """
    filters = {name: None if value == () else value for name, value in filters.items()}
    if every:
        del filters["offset"], filters["cursor"]
        jobs = client.iter_jobs(**filters)
        if as_json:
            for job in jobs:
                options.echo_json(job.raw)
        else:
            render.console().print(render.jobs_table(list(jobs)))
        return
    page = client.list_jobs(**filters)
    if as_json:
        options.echo_json(page.raw)
        return
    caption = f"{len(page.items)} of {page.total}"
    if page.next_cursor:
        caption += f"; next page: --cursor {page.next_cursor}"
    render.console().print(render.jobs_table(list(page.items), caption))


@click.command()
@click.argument("job_id")
@click.option("--as-of", type=click.IntRange(min=1), help="As it was after its event number N.")
@click.option("--logs", is_flag=True, help="With its newest 100 log lines.")
@options.json_output
@options.connection
def get(client: Client, job_id: str, as_of: int | None, logs: bool, as_json: bool) -> None:
    """Show one job."""
    job = client.get_job(job_id, as_of=as_of, logs=logs)
    if as_json:
        options.echo_json(job.raw)
        return
    out = render.console()
    out.print(render.job_fields(job))
    for event in job.logs or ():
        out.print(render.log_line(event))


@click.command()
@click.argument("job_id")
@click.option("--reason", help="Why (1-1000 characters).")
@options.json_output
@options.connection
def cancel(client: Client, job_id: str, reason: str | None, as_json: bool) -> None:
    """Cancel a job: a pending one at once, a running one at its next checkpoint."""
    job = client.cancel_job(job_id, reason=reason)
    if as_json:
        options.echo_json(job.raw)
    elif job.status == "cancelled":
        click.echo(f"{job.id} cancelled")
    else:
        click.echo(f"{job.id} asked to stop (still {job.status})")


@click.command()
@click.argument("job_id")
@options.json_output
@options.connection
def replay(client: Client, job_id: str, as_json: bool) -> None:
    """Run a job again as a new job; print the new job's id."""
    job = client.replay_job(job_id)
    if as_json:
        options.echo_json(job.raw)
    else:
        click.echo(job.id)


@click.command()
@click.argument("job_id")
@options.connection
def delete(client: Client, job_id: str) -> None:
    """Delete a job (a running one is cancelled first); its events stay in the store."""
    client.delete_job(job_id)
    click.echo(f"{job_id} deleted")
