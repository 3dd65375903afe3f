"""The hash chains' table, `event_hashes` (one row per stored event, keyed by its event id), as
both backends keep it beside the library's events table: linking new events in the transaction
that stores them, chaining a store's existing events (a migration), and the statements the
audit scans read it with. service/store/chain.py is the hashing; a backend says where its
events are (`Layout`), so that both compute the same chains: a store's heads are the same on
SQLite and on PostgreSQL when they hold the same events under the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from service.store import chain

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from eventsourcing.persistence import StoredEvent

    from projections.sql import Cursor

_NONE = (0, b"")
_PAGE = 5000
_INSERT = "INSERT INTO event_hashes (id, job_hash, log_hash) VALUES (?, ?, ?)"
_LOG_HEAD = "SELECT log_hash FROM event_hashes ORDER BY id DESC LIMIT 1"


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a backend keeps its events (the table aliased `e` in every statement)."""

    events: str  # the library's events table
    id: str  # its event id, as an expression on `e`
    job: str  # its job id as 32 lowercase hex digits, as an expression on `e`
    create: str  # the statement that makes `event_hashes` in the backend's dialect

    def previous_job_hash(self) -> str:
        return (
            f"SELECT h.job_hash FROM {self.events} AS e JOIN event_hashes AS h "
            f"ON h.id = {self.id} WHERE e.originator_id = ? AND e.originator_version = ?"
        )

    def orphans(self) -> str:
        """Hashes whose event is gone (none, untampered), in id order, as `Link` rows."""
        return (
            "SELECT h.id, NULL, 0, h.job_hash, h.log_hash FROM event_hashes AS h WHERE NOT "
            f"EXISTS (SELECT 1 FROM {self.events} AS e WHERE {self.id} = h.id) ORDER BY h.id"
        )

    def log(self) -> str:
        """Every event's id, job, version and hashes, in id order, as `Link` rows."""
        return (
            f"SELECT {self.id}, {self.job}, e.originator_version, h.job_hash, h.log_hash "
            f"FROM {self.events} AS e LEFT JOIN event_hashes AS h ON h.id = {self.id} "
            f"ORDER BY {self.id}"
        )

    def events_after(self, *, hashes: bool) -> str:
        """Every event after an id (the parameter), in id order, as `Link` rows."""
        return self._stored(f"WHERE {self.id} > ? ORDER BY {self.id}", hashes=hashes)

    def by_job(self, *, hashes: bool) -> str:
        """Every event in (job, version) order, as `Link` rows."""
        return self._stored("ORDER BY e.originator_id, e.originator_version", hashes=hashes)

    def _stored(self, rest: str, *, hashes: bool) -> str:
        columns, join = "NULL, NULL", ""
        if hashes:
            columns = "h.job_hash, h.log_hash"
            join = f"LEFT JOIN event_hashes AS h ON h.id = {self.id} "
        return (
            f"SELECT {self.id}, {self.job}, e.originator_version, {columns}, e.topic, e.state "
            f"FROM {self.events} AS e {join}{rest}"
        )


class Heads:
    """Each job's newest committed version and job hash, so that chaining an event rarely
    reads its predecessor's hash back. Only what has committed is kept: a version's hash never
    changes once committed, and a stale entry (another process wrote the job since) does not
    match the version being written, so that one is read from the table instead.

    At most `kept` jobs (~300 bytes each), as many as the writer keeps: the jobs that get
    events are mostly the recent ones, and a forgotten head costs one indexed read. (At
    50,000 it grew the server by ~7 MiB over a ten-minute soak before it stopped.)"""

    def __init__(self, kept: int = 4096) -> None:
        self._kept = kept
        self.committed: dict[str, tuple[int, bytes]] = {}
        self.uncommitted: dict[str, tuple[int, bytes]] = {}

    def ended(self, *, ok: bool) -> None:
        """The transaction of the chained events ended: committed (`ok`) or rolled back."""
        if ok and self.uncommitted:
            if len(self.committed) > self._kept:
                self.committed.clear()
            self.committed.update(self.uncommitted)
        self.uncommitted.clear()


def link(
    c: Cursor,
    layout: Layout,
    positions: Sequence[int],
    stored_events: Sequence[StoredEvent],
    heads: Heads,
) -> None:
    """Chains newly inserted events. The transaction holds the database's write lock, so the
    log's head read here stays the head until it commits, whichever process writes next."""
    c.execute(_LOG_HEAD)
    head = c.fetchone()
    log = chain.GENESIS if head is None else bytes(head[0])
    committed, uncommitted = heads.committed, heads.uncommitted
    rows = []
    for position, s in zip(positions, stored_events, strict=True):
        job_id = s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id
        version = s.originator_version
        known = uncommitted.get(job_id) or committed.get(job_id, _NONE)
        if version == 1:
            previous = chain.GENESIS
        elif known[0] == version - 1:
            previous = known[1]
        else:
            c.execute(layout.previous_job_hash(), (job_id, version - 1))
            found = c.fetchone()
            previous = chain.GENESIS if found is None else bytes(found[0])
        job_hash = chain.job_hash(previous, position, job_id, version, s.topic, s.state)
        log = chain.log_hash(log, job_hash)
        uncommitted[job_id] = (version, job_hash)
        rows.append((position, job_hash, log))
    c.executemany(_INSERT, rows)


def chain_existing_events(c: Cursor, layout: Layout) -> None:
    """The migration that adds the chains to a store written before them, at constant memory:
    the job chains in the order of (job, version), then the log chain in id order."""
    c.execute(layout.create)
    after: tuple[str, int] = ("0" * 32, 0)  # before every job id, as text and as a UUID
    previous = chain.GENESIS
    page_of_jobs = (
        f"SELECT {layout.id}, {layout.job}, e.originator_version, e.topic, e.state "
        f"FROM {layout.events} AS e WHERE (e.originator_id, e.originator_version) > (?, ?) "
        f"ORDER BY e.originator_id, e.originator_version LIMIT {_PAGE}"
    )
    while True:
        c.execute(page_of_jobs, after)
        page = c.fetchall()
        if not page:
            break
        rows = []
        for event_id, job_id, version, topic, state in page:
            if job_id != after[0]:
                previous = chain.GENESIS
            previous = chain.job_hash(previous, event_id, job_id, version, topic, as_bytes(state))
            rows.append((event_id, previous, b""))
            after = (job_id, version)
        c.executemany(_INSERT, rows)
    log, last = chain.GENESIS, 0
    page_of_log = f"SELECT id, job_hash FROM event_hashes WHERE id > ? ORDER BY id LIMIT {_PAGE}"
    while True:
        c.execute(page_of_log, (last,))
        page = c.fetchall()
        if not page:
            break
        updates = []
        for event_id, job_hash in page:
            log = chain.log_hash(log, bytes(job_hash))
            updates.append((log, event_id))
        c.executemany("UPDATE event_hashes SET log_hash = ? WHERE id = ?", updates)
        last = page[-1][0]


def as_bytes(state: object) -> bytes:
    """A stored state: bytes, but edited by hand (SQLite) it may come back as TEXT, or
    anything."""
    if isinstance(state, bytes):
        return state
    if isinstance(state, bytearray | memoryview):
        return bytes(state)
    return str(state).encode()


def merged(orphans: Iterable[Sequence[Any]], rows: Iterable[Sequence[Any]]) -> Iterator[chain.Link]:
    """The log pass: the events' rows (`Layout.log`) with the few hashes whose event is gone
    (`Layout.orphans`, found first) merged in, all in id order."""
    pending = [chain.Link(*row) for row in orphans]
    pending.reverse()
    link = chain.Link
    for row in rows:
        while pending and pending[-1].id < row[0]:
            yield pending.pop()
        yield link(*row)
    while pending:
        yield pending.pop()
