"""The PostgreSQL backend's audit side, as sqlite_audit.py is SQLite's: where its hash chains'
rows are (`event_hashes`, written with each event group, and for a store written before them
by migration 3), and the read scan that `audit export` and `audit verify` stream from
(service/store/event_hashes.py and chain.py hold what both backends share of the chains).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import tuple_row

from projections import postgres as dialect
from service.store import decoding, event_hashes

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from eventsourcing.persistence import StoredEvent

    from projections.sql import Cursor

_HASHES_TABLE = (
    "CREATE TABLE event_hashes (id BIGINT PRIMARY KEY, job_hash BYTEA NOT NULL, "
    "log_hash BYTEA NOT NULL)"
)
_names = itertools.count()  # of server-side cursors: one name per open cursor


def layout(events_table: str) -> event_hashes.Layout:
    """The layout of the library's events table `events_table` (a plain lowercase name)."""
    return event_hashes.Layout(
        events=f'"{events_table}"',
        id="e.notification_id",
        # As SQLite stores it (the job hash covers it): 32 hex digits, no dashes.
        job="replace(e.originator_id::text, '-', '')",
        create=_HASHES_TABLE,
    )


def chain_existing_events(events_table: str) -> Callable[[Cursor], None]:
    """Migration 3: the chains of the events stored before them. It takes the writers' lock
    first: a writer of this version waits, and chains its events after these."""

    def apply(cursor: Cursor) -> None:
        assert isinstance(cursor, dialect.Cursor)
        statement = psycopg.sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE")
        cursor.raw.execute(statement.format(psycopg.sql.Identifier(events_table)))
        event_hashes.chain_existing_events(cursor, layout(events_table))

    return apply


class Scan(decoding.LayoutScan):
    """The audit's read scan on PostgreSQL: each statement through a server-side cursor, so
    rows come in batches, at constant memory at any size, in the scan's one snapshot. `close`
    before the transaction ends."""

    def __init__(
        self,
        connection: psycopg.Connection[Any],
        events_table: str,
        decode: Callable[[StoredEvent], Any],
    ) -> None:
        self._connection = connection
        self._opened: list[psycopg.ServerCursor[tuple[Any, ...]]] = []
        super().__init__(layout(events_table), decode, hashed=True)

    def server_cursor(self) -> psycopg.ServerCursor[tuple[Any, ...]]:
        name = f"audit_scan_{next(_names)}"
        raw = self._connection.cursor(name=name, row_factory=tuple_row)
        raw.itersize = 2000
        self._opened.append(raw)
        return raw

    def close(self) -> None:
        for raw in self._opened:
            raw.close()
        self._opened.clear()

    def cursor(self) -> Cursor:
        return _ServerCursor(self.server_cursor())

    def rows(self, statement: str, parameters: tuple[Any, ...]) -> Iterator[Sequence[Any]]:
        raw = self.server_cursor()
        raw.execute(dialect.dialect(statement), parameters)
        yield from raw  # FETCHes a batch at a time


class _ServerCursor:
    """A server-side cursor behind projections/' `Cursor` (for the read tables the audit reads
    beside the events): rows come in batches, never a whole table at once. Read only."""

    def __init__(self, raw: psycopg.ServerCursor[tuple[Any, ...]]) -> None:
        self._raw = raw
        self._rows: Iterator[tuple[Any, ...]] = iter(())

    def execute(self, statement: str, parameters: Sequence[Any] = (), /) -> _ServerCursor:
        self._raw.execute(dialect.dialect(statement), tuple(parameters))
        self._rows = iter(self._raw)  # FETCHes a batch at a time (fetchone would FETCH one)
        return self

    def executemany(self, statement: str, parameters: Iterable[Sequence[Any]], /) -> None:
        raise TypeError("a scan only reads")

    def fetchone(self) -> tuple[Any, ...] | None:
        return next(self._rows, None)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._rows)
