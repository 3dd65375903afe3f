"""The SQLite backend's audit side: the hash chains' rows (written with each event group,
and for a store written before them by migration 1), the schema's migration ledger, and the
read scan that `audit export` and `audit verify` stream from (service/store/chain.py holds the
hashing itself, service/store/migrations.py the runner).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from projections import projector
from service.store import chain, decoding, migrations

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from eventsourcing.sqlite import SQLiteCursor

    from projections.sql import Cursor


# The hash chains (service/store/chain.py), one row per stored event, keyed by its event id
# (the library's `stored_events` table is the library's). Made by migration 1.
_HASHES_TABLE = (
    "CREATE TABLE event_hashes (id INTEGER PRIMARY KEY, job_hash BLOB NOT NULL, "
    "log_hash BLOB NOT NULL)"
)
HEADS_KEPT = 50_000
_NONE = (0, b"")
_INSERT_HASHES = "INSERT INTO event_hashes (id, job_hash, log_hash) VALUES (?, ?, ?)"
_PREVIOUS_JOB_HASH = (
    "SELECT h.job_hash FROM stored_events AS e JOIN event_hashes AS h ON h.id = e.rowid "
    "WHERE e.originator_id = ? AND e.originator_version = ?"
)


def link(
    c: SQLiteCursor,
    positions: Sequence[int],
    stored_events: Sequence[StoredEvent],
    committed: dict[str, tuple[int, bytes]],
    heads: dict[str, tuple[int, bytes]],
) -> None:
    """Chains newly inserted events (`heads` gets each job's newest). The group holds the
    write lock, so the log's head read here stays the head until it commits, whichever
    process writes next."""
    c.execute("SELECT log_hash FROM event_hashes ORDER BY id DESC LIMIT 1")
    head = c.fetchone()
    log = chain.GENESIS if head is None else head[0]
    rows = []
    for position, s in zip(positions, stored_events, strict=True):
        job_id = s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id
        version = s.originator_version
        if version == 1:
            previous = chain.GENESIS
        elif ((known := heads.get(job_id)) or committed.get(job_id, _NONE))[0] == version - 1:
            previous = (known or committed[job_id])[1]
        else:
            c.execute(_PREVIOUS_JOB_HASH, (job_id, version - 1))
            found = c.fetchone()
            previous = chain.GENESIS if found is None else found[0]
        job_hash = chain.job_hash(previous, position, job_id, version, s.topic, s.state)
        log = chain.log_hash(log, job_hash)
        heads[job_id] = (version, job_hash)
        rows.append((position, job_hash, log))
    c.executemany(_INSERT_HASHES, rows)


def _chain_existing_events(c: Cursor) -> None:
    """Migration 1: the chains of a store written before them, at constant memory: the job
    chains in the order of (job, version), then the log chain in id order."""
    c.execute(_HASHES_TABLE)
    after: tuple[str, int] = ("", 0)
    previous = chain.GENESIS
    while True:
        c.execute(
            "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events "
            "WHERE (originator_id, originator_version) > (?, ?) "
            "ORDER BY originator_id, originator_version LIMIT 5000",
            after,
        )
        page = c.fetchall()
        if not page:
            break
        rows = []
        for event_id, job_id, version, topic, state in page:
            if job_id != after[0]:
                previous = chain.GENESIS
            previous = chain.job_hash(previous, event_id, job_id, version, topic, _as_bytes(state))
            rows.append((event_id, previous, b""))
            after = (job_id, version)
        c.executemany(_INSERT_HASHES, rows)
    log, last = chain.GENESIS, 0
    while True:
        c.execute(
            "SELECT id, job_hash FROM event_hashes WHERE id > ? ORDER BY id LIMIT 5000", (last,)
        )
        page = c.fetchall()
        if not page:
            break
        updates = []
        for event_id, job_hash in page:
            log = chain.log_hash(log, job_hash)
            updates.append((log, event_id))
        c.executemany("UPDATE event_hashes SET log_hash = ? WHERE id = ?", updates)
        last = page[-1][0]


def _as_bytes(state: object) -> bytes:
    """A stored state: a BLOB, but edited by hand it may come back as TEXT (or anything)."""
    return state if isinstance(state, bytes) else str(state).encode()


MIGRATIONS = (migrations.Migration(1, "hash chains of the stored events", _chain_existing_events),)
LEDGER_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
)


class Scan:
    def __init__(self, connection: sqlite3.Connection, decode: Callable[[Any], Any]) -> None:
        self._connection = connection
        self._events = decoding.StoredEvents(decode)
        found = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'event_hashes'"
        self._hashed = connection.execute(found).fetchone() is not None  # not: unmigrated

    def cursor(self) -> sqlite3.Cursor:
        cursor = self._connection.cursor()
        cursor.row_factory = None  # plain tuples: the scans read millions of rows
        return cursor

    def log(self) -> Iterator[chain.Link]:
        # Hashes whose event is gone are few (none, untampered): found first, then merged
        # into the one ordered pass over the events and their hashes.
        orphans = self.cursor().execute(
            "SELECT h.id, NULL, 0, h.job_hash, h.log_hash FROM event_hashes AS h "
            "WHERE NOT EXISTS (SELECT 1 FROM stored_events AS e WHERE e.rowid = h.id) "
            "ORDER BY h.id"
        )
        pending = [chain.Link(*row) for row in orphans]
        pending.reverse()
        rows = self.cursor().execute(
            "SELECT e.rowid, e.originator_id, e.originator_version, h.job_hash, h.log_hash "
            "FROM stored_events AS e LEFT JOIN event_hashes AS h ON h.id = e.rowid "
            "ORDER BY e.rowid"
        )
        link = chain.Link
        for row in rows:
            while pending and pending[-1].id < row[0]:
                yield pending.pop()
            yield link(*row)
        while pending:
            yield pending.pop()

    def events(self, after: int) -> Iterator[tuple[chain.Link, projector.Recorded | None]]:
        rows = self.cursor().execute(
            "SELECT rowid, originator_id, originator_version, NULL, NULL, topic, state "
            "FROM stored_events WHERE rowid > ? ORDER BY rowid",
            (after,),
        )
        recorded, link = self._recorded, chain.Link._make
        for row in rows:  # a row is a Link's fields, in order
            yield link(row), recorded(*row)

    def jobs(self) -> Iterator[tuple[chain.Link, projector.Recorded | None]]:
        hashes, join = ("h.job_hash, h.log_hash", "LEFT JOIN event_hashes AS h ON h.id = e.rowid")
        if not self._hashed:
            hashes, join = "NULL, NULL", ""
        rows = self.cursor().execute(
            f"SELECT e.rowid, e.originator_id, e.originator_version, {hashes}, e.topic, e.state "
            f"FROM stored_events AS e {join} ORDER BY e.originator_id, e.originator_version"
        )
        for row in rows:
            link = chain.Link._make(row)
            if not isinstance(link.state, bytes):  # edited by hand: TEXT, or anything
                link = link._replace(state=_as_bytes(link.state))
            yield link, self._recorded(*link)

    def _recorded(
        self,
        event_id: int,
        job_id: str | None,
        version: int,
        _: Any,
        __: Any,
        topic: str,
        state: Any,
    ) -> projector.Recorded | None:
        return self._events.recorded(event_id, job_id, version, topic, state)
