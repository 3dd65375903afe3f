"""Following jobs live: `jobtrail watch` (a progress bar until the job ends) and
`jobtrail events` (NDJSON, one API Event a line, optionally live).

Both resume after a dropped connection from the last event shown (the client's `watch`),
so nothing is shown twice or skipped.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from service.cli import options, render

if TYPE_CHECKING:
    from collections.abc import Iterable

    from rich.progress import Progress, TaskID

    from service.sdk.client import Client
    from service.sdk.models import Event, Job

# `watch` exit statuses: how the job ended; 3 when it could not be followed.
OUTCOME_STATUS = {"succeeded": 0, "failed": 1, "cancelled": 2}


class Unfollowed(options.Failed):
    """The job could not be followed: exit status 3."""

    exit_code = 3


@click.command()
@click.argument("job_id")
@options.connection
def watch(client: Client, job_id: str) -> None:
    """Follow a job live until it ends: stage, progress bar, message and log lines.

    Exit status: 0 succeeded, 1 failed, 2 cancelled; 3 when it could not be followed
    (unreachable server, unknown job, refused token).
    """
    with options.reported(Unfollowed):
        final = _follow(client, job_id)
    sys.exit(OUTCOME_STATUS.get(final.status, Unfollowed.exit_code))


def _follow(client: Client, job_id: str) -> Job:
    job = client.get_job(job_id, logs=True)
    out = render.console()
    out.print(f"{job.id}  {job.type}" + (f"  {job.name}" if job.name else ""))
    for event in job.logs or ():
        out.print(render.log_line(event))
    if not job.finished:
        watch = client.watch(job.id, after=job.last_event_id)
        with render.progress_bar(out) as bar:
            task = bar.add_task("", total=100, stage="", message="")
            fields = _show(bar, task, dict(job.raw.get("progress") or {}))
            for event in watch:
                fields = _apply(bar, task, event, fields)
        job = watch.final or client.get_job(job.id)
    out.print(render.outcome(job))
    return job


def _apply(bar: Progress, task: TaskID, event: Event, fields: dict[str, Any]) -> dict[str, Any]:
    """Shows one event; returns the progress fields after it."""
    if event.type == "log":
        bar.console.print(render.log_line(event))
    elif event.type == "progress" and isinstance(event.data, dict):
        return _show(bar, task, {**fields, **event.data})  # only the given fields change
    elif event.type == "started":  # a new attempt starts with empty progress
        bar.console.print(f"attempt started ({event.data.get('worker_id', 'a worker')})")
        return _show(bar, task, {})
    elif event.type in ("retry_scheduled", "cancel_requested"):
        bar.console.print(event.type.replace("_", " "))
    return fields


def _show(bar: Progress, task: TaskID, fields: dict[str, Any]) -> dict[str, Any]:
    done = render.percent(fields)
    bar.update(
        task,
        completed=done or 0,
        total=None if done is None else 100,
        stage=fields.get("stage") or "",
        message=fields.get("message") or "",
    )
    return fields


@click.command()
@click.argument("job_id", required=False)
@click.option("--after", type=click.IntRange(min=0), default=0, help="Start after this event id.")
@click.option("--follow", is_flag=True, help="Go on live (one job's: until it ends).")
@click.option("--type", "types", multiple=True, help="Only these event types (without JOB_ID).")
@options.connection
def events(
    client: Client, job_id: str | None, after: int, follow: bool, types: tuple[str, ...]
) -> None:
    """Print events as NDJSON, one API Event a line: one job's (JOB_ID) or every event you
    may see, after --after; with --follow, live."""
    if job_id is not None and types:
        raise click.UsageError("--type filters every job's events: leave out JOB_ID")
    filters = {"type": list(types)} if types else {}
    if job_id is not None:
        follow_job = client.watch if follow else client.iter_job_events
        found: Iterable[Event] = follow_job(job_id, after=after)
    elif follow:
        found = client.watch_all(after=after, **filters)
    else:
        found = client.iter_events(after=after, limit=1000, **filters)
    for event in found:
        options.echo_json(event.raw)
        if follow:
            sys.stdout.flush()
