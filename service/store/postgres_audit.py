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
    from collections.abc import Callable, Iterator, Sequence

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
    rows come in batches, at constant memory at any size, in the scan's one snapshot."""

    def __init__(
        self,
        connection: psycopg.Connection[Any],
        events_table: str,
        decode: Callable[[StoredEvent], Any],
    ) -> None:
        self._connection = connection
        super().__init__(layout(events_table), decode, hashed=True)

    def cursor(self) -> Cursor:
        return dialect.Cursor(self._connection.cursor(row_factory=tuple_row))

    def rows(self, statement: str, parameters: tuple[Any, ...]) -> Iterator[Sequence[Any]]:
        name = f"audit_scan_{next(_names)}"
        with self._connection.cursor(name=name, row_factory=tuple_row) as raw:
            raw.itersize = 2000
            raw.execute(dialect.dialect(statement), parameters)
            yield from raw
