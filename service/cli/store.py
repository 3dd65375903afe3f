"""`jobtrail store copy`: moving an SQLite store to PostgreSQL (service/store/transfer.py).

Any failure is one line on stderr and exit status 1 (a source that does not verify: its first
findings before it), never a traceback; a usage error exits 2. Progress goes to stderr, the
result to stdout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import TYPE_CHECKING

import click

from service.cli import options
from service.settings import ConfigError, redacted

if TYPE_CHECKING:
    from collections.abc import Iterator

    from service.settings import Settings
    from service.store.base import EventStore
    from service.store.postgres import PostgresEventStore


@click.group()
def store() -> None:
    """Move the event store between databases."""


@store.command("copy")
@click.argument("source", metavar="SQLITE_PATH")
@click.option(
    "--to",
    "target_url",
    required=True,
    metavar="postgresql://USER@HOST:PORT/DBNAME",
    help="An empty PostgreSQL database (the password from the URL, else PGPASSWORD).",
)
def store_copy(source: str, target_url: str) -> None:
    """Copy the SQLite store at SQLITE_PATH into an empty PostgreSQL database.

    STOP THE SERVICE FIRST (every process on the SQLite file): the copy reads the source as it
    is when the copy starts, and fails if it changes meanwhile. The source must verify clean
    (`jobtrail audit verify`); it is only read. Events keep their ids and hash chains; the read
    models are built on the target from the events (lease renewals are carried over). One
    transaction on the target: all or nothing. Then the target is verified, and its event
    count and head must equal the source's. Exit status 0 copied, 1 not copied (a non-empty
    target, a source that does not verify or cannot be read, an unreachable target) or, said
    so, copied but not equal to the source; 2 a usage error.
    """
    from service import errors
    from service.store import transfer

    base = options.settings()
    target_settings = _postgres(base, target_url)  # a usage error first
    source_settings = _sqlite(base, source)
    with (
        _opened_source(source_settings) as source_store,
        _opened_target(target_settings) as target_store,
    ):
        try:
            copied = transfer.copy_store(
                source_store,
                target_store,
                sizes=transfer.Sizes(interval=base.snapshot_interval),
                progress=_Progress(),
            )
        except transfer.SourceNotClean as exc:
            for finding in exc.findings:
                click.echo(finding, err=True)
            raise options.Failed(
                f"{exc} (the first {len(exc.findings)} above): nothing was copied; "
                "`jobtrail projections rebuild` repairs findings in the read models"
            ) from exc
        except transfer.TargetNotEmpty as exc:
            raise options.Failed(
                f"{exc}: copy only into an empty database (nothing was copied)"
            ) from exc
        except transfer.SourceChanged as exc:
            raise options.Failed(f"{exc.__doc__} Nothing was copied.") from exc
        except transfer.CopyMismatch as exc:
            raise options.Failed(
                f"{exc} (the copy was committed: empty the target before copying again)"
            ) from exc
        except transfer.CopyError as exc:
            raise options.Failed(str(exc)) from exc
        except errors.StoreUnavailable as exc:
            raise options.Failed(f"a store failed: {_last_line(exc)}") from exc
    rate = copied.source.events / copied.seconds if copied.seconds else 0.0
    click.echo(
        f"copied {copied.source.events:,} events in {copied.seconds:.1f} s "
        f"({rate:,.0f} events/s); {copied.source.leases} leases carried over"
    )
    for name, tally in (("source", copied.source), ("target", copied.target)):
        head = f"{tally.head.event_id}:{tally.head.log_hash}"
        click.echo(f"{name}: {tally.events} events, head: {head}")
    click.echo(
        "the target verifies clean, with the source's events, head and leases: "
        "serve it with JOBTRAIL_DATABASE_URL set to it"
    )


def _sqlite(base: Settings, source: str) -> Settings:
    url = source if source.startswith("sqlite:") else f"sqlite:///{source}"
    settings = dataclasses.replace(base, database_url=url)
    if not settings.sqlite_path.is_file():
        raise options.Failed(f"no event store at {settings.sqlite_path}")
    return settings


def _postgres(base: Settings, url: str) -> Settings:
    settings = dataclasses.replace(base, database_url=url)
    try:
        settings.postgres  # noqa: B018 (checks the URL's parts)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--to") from exc
    return settings


@contextlib.contextmanager
def _opened_source(settings: Settings) -> Iterator[EventStore]:
    from service.store import backends

    try:
        opened = backends.open_store(settings, migrate=False)  # only read
    except Exception as exc:  # whatever the database says (not a database, unreadable)
        raise options.Failed(f"cannot open the source {settings.sqlite_path}: {exc}") from exc
    try:
        yield opened
    finally:
        opened.close()


@contextlib.contextmanager
def _opened_target(settings: Settings) -> Iterator[PostgresEventStore]:
    from service.store import postgres

    try:
        opened = postgres.PostgresEventStore.open(settings)
    except Exception as exc:  # unreachable, refused, no such database
        raise options.Failed(
            f"cannot open the target {redacted(settings.database_url)}: {_last_line(exc)}"
        ) from exc
    try:
        yield opened
    finally:
        opened.close()


def _last_line(exc: BaseException) -> str:
    """What the database said, the cause of the application's error, in one line."""
    lines = str(exc.__cause__ or exc).strip().splitlines()
    return lines[-1] if lines else type(exc).__name__


class _Progress:
    """Progress lines on stderr: each phase, and the copy's count at most once a second."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._shown = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase != "copying":
            click.echo(f"{phase}…", err=True)
            self._started = now
            return
        if done < total and now - self._shown < 1:
            return
        self._shown = now
        rate = done / (now - self._started) if now > self._started else 0.0
        click.echo(f"copied {done:,} of {total:,} events ({rate:,.0f}/s)", err=True)
