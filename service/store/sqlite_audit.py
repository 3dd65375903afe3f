"""The SQLite backend's audit side: where its hash chains' rows are (written with each event
group, and for a store written before them by migration 1), the schema's migration ledger, and
the read scan that `audit export` and `audit verify` stream from (service/store/event_hashes.py
and chain.py hold what both backends share of the chains, service/store/migrations.py the
runner).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from service.store import decoding, event_hashes, migrations

if TYPE_CHECKING:
    from collections.abc import Callable

    from projections.sql import Cursor


# The hash chains (service/store/event_hashes.py), one row per stored event, keyed by its
# event id (the library's `stored_events` table is the library's). Made by migration 1.
LAYOUT = event_hashes.Layout(
    events="stored_events",
    id="e.rowid",
    job="e.originator_id",
    create=(
        "CREATE TABLE event_hashes (id INTEGER PRIMARY KEY, job_hash BLOB NOT NULL, "
        "log_hash BLOB NOT NULL)"
    ),
)


def _chain_existing_events(c: Cursor) -> None:
    event_hashes.chain_existing_events(c, LAYOUT)


MIGRATIONS = (migrations.Migration(1, "hash chains of the stored events", _chain_existing_events),)
LEDGER_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
)


class Scan(decoding.LayoutScan):
    def __init__(self, connection: sqlite3.Connection, decode: Callable[[Any], Any]) -> None:
        self._connection = connection
        found = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'event_hashes'"
        hashed = connection.execute(found).fetchone() is not None  # not: unmigrated
        super().__init__(LAYOUT, decode, hashed=hashed)

    def cursor(self) -> sqlite3.Cursor:
        cursor = self._connection.cursor()
        cursor.row_factory = None  # plain tuples: the scans read millions of rows
        return cursor

    def rows(self, statement: str, parameters: tuple[Any, ...]) -> sqlite3.Cursor:
        return self.cursor().execute(statement, parameters)
