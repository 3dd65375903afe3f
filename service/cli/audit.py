"""`jobtrail audit`: what an auditor runs against the event store itself (not the HTTP API):
`export` the ordered log, read one job's `history` state by state, `verify` the read models.

Nothing here writes. Any failure is one line and exit status 1, never a traceback. The store's
modules are imported by these commands only (the client commands start faster without them).
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import TYPE_CHECKING, Any
from uuid import UUID

import click

from service.cli import options
from service.settings import redacted

if TYPE_CHECKING:
    from collections.abc import Iterator

    from service.store import export
    from service.store.base import EventStore


@click.group()
def audit() -> None:
    """Read and check the event log straight from the event store."""


@contextlib.contextmanager
def _store() -> Iterator[EventStore]:
    """The configured event store, its failures as one-line errors (exit status 1)."""
    from service import errors
    from service.store import backends, export

    settings = options.settings()
    if settings.database_url.startswith("sqlite:") and not settings.sqlite_path.is_file():
        raise options.Failed(f"no event store at {settings.sqlite_path}")  # not a new, empty one
    try:
        store = backends.open_store(settings, migrate=False)  # an audit never writes
    except Exception as exc:  # whatever the database says (missing folder, not a database)
        raise options.Failed(
            f"cannot open the event store {redacted(settings.database_url)}: {exc}"
        ) from exc
    try:
        yield store
    except errors.StoreUnavailable as exc:
        raise options.Failed(f"cannot read the event store: {exc.__cause__ or exc}") from exc
    except export.BrokenHistory as exc:
        raise options.Failed(f"the stored events do not fold: {exc}") from exc
    finally:
        store.close()


def _job_id(_ctx: click.Context, _param: click.Parameter, value: str | None) -> UUID | None:
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise click.BadParameter(f"not a job id: {value!r}") from None


@audit.command("export")
@click.option("--after", type=click.IntRange(min=0), default=0, help="Start after this event id.")
@click.option("--job", "job_id", callback=_job_id, help="Only this job's events.")
def audit_export(after: int, job_id: UUID | None) -> None:
    """Print the event log in id order as NDJSON: one API Event a line, ids the API's.

    Streams at constant memory, whatever the size of the store; deleted jobs' events too.
    """
    from service.store import export

    out = sys.stdout.buffer  # the lines are UTF-8 already
    with _store() as store:
        for chunk in export.ndjson(store, after=after, job_id=job_id):
            out.write(chunk)
    out.flush()


@audit.command("history")
@click.argument("job_id", callback=_job_id)
@click.option("--json", "as_json", is_flag=True, help='NDJSON: {"event", "job", "changed"}.')
def audit_history(job_id: UUID, as_json: bool) -> None:
    """Every event of one job, and what it changed in the job (folded by the domain model)."""
    from service.store import export

    seen = False
    with _store() as store:
        for step in export.history(store, job_id):
            seen = True
            if as_json:
                changed = {name: list(pair) for name, pair in step.changed.items()}
                options.echo_json({"event": step.event, "job": step.job, "changed": changed})
            else:
                _print_step(step)
    if not seen:
        raise options.Failed(f"job {job_id} has no events in the store")


def _print_step(step: export.Step) -> None:
    event = step.event
    line = f"#{event['seq']} {event['type']}  (event {event['id']}, {event['timestamp']})"
    if event["message"] is not None:
        line += f"  [{event['level']}] {event['message']}"
    click.echo(line)
    for name, (before, after) in step.changed.items():
        click.echo(f"    {name}: {_short(before)} -> {_short(after)}")


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= 200 else text[:197] + "..."


def _head(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    from service.store import verification

    event_id, _, log_hash = value.partition(":")
    if not event_id.isdigit() or len(log_hash) != 64 or log_hash.strip("0123456789abcdef"):
        raise click.BadParameter(f"not EVENT:HASH (as verify prints the head): {value!r}")
    return verification.Head(int(event_id), log_hash)


@audit.command("verify")
@click.option(
    "--expect-head",
    "anchor",
    metavar="EVENT:HASH",
    callback=_head,
    help="A head printed by an earlier verify and kept elsewhere: the log must still hold it.",
)
def audit_verify(anchor: Any) -> None:
    """Check the hash chains of the stored events (each event's to its job's previous one,
    and the whole log's), that each job's versions are contiguous, and that the read models
    equal the fold of the events. One line per finding, naming the job and version; exit 1
    on any. Last, the log's head hash: record it elsewhere to detect a later rewrite."""
    from service.store import verification

    found = 0
    with _store() as store:
        verifier = verification.Verifier(store, anchor)
        for problem in verifier.run():
            found += 1
            click.echo(f"{problem.table} {problem.key}: {problem.problem}")
    head = f"head: {verifier.head.event_id}:{verifier.head.log_hash}"
    if found:
        click.echo(f"{found} finding(s); {head}")
        sys.exit(1)
    click.echo("the hash chains hold and the read models equal the fold of the events")
    click.echo(f"{head}  (keep it elsewhere; --expect-head checks it later)")
