"""The event store: the `eventsourcing` library's SQLite persistence, with the read models
maintained inside the transaction that records the events (read-your-writes, exactly once).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import sqlite3
from typing import TYPE_CHECKING, Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteFactory,
)

from domain.job import Job
from projections import projector, sql
from service import errors
from service.store import chain, migrations, transcoding

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from eventsourcing.domain import Snapshot
    from eventsourcing.persistence import InfrastructureFactory, Transcoder
    from eventsourcing.utils import Environment

    from projections.sql import Cursor
    from service.settings import Settings
    from service.store.base import ProjectionBatch, Scan

T = TypeVar("T")


class _TunedPool(SQLiteConnectionPool):
    def __init__(self, *, synchronous: str, **kwargs: Any) -> None:
        self.synchronous = synchronous
        super().__init__(**kwargs)

    def _create_connection(self) -> SQLiteConnection:
        # As the library's, but with a real statement cache: it passes cached_statements=True,
        # which sqlite3 reads as a cache of ONE statement, so every statement was re-prepared.
        try:
            connection = sqlite3.connect(
                self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                cached_statements=256,
                timeout=self.lock_timeout or 5,
            )
        except sqlite3.Error as exc:
            raise InterfaceError(exc) from exc
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={self.synchronous}")
        connection.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=connection, max_age=self.max_age)


class ProjectingRecorder(SQLiteApplicationRecorder):
    # Each job's newest committed version and job hash, so that chaining an event rarely
    # reads its predecessor's hash back. Only what has committed is kept: a version's hash
    # never changes once committed, and a stale entry (another process wrote the job since)
    # does not match the version being written, so it is read from the table instead.
    heads: dict[str, tuple[int, bytes]]
    uncommitted: dict[str, tuple[int, bytes]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heads, self.uncommitted = {}, {}

    def committed(self, ok: bool) -> None:
        """The transaction of the chained events ended: committed (`ok`) or rolled back."""
        if ok and self.uncommitted:
            if len(self.heads) > _HEADS_KEPT:
                self.heads.clear()
            self.heads.update(self.uncommitted)
        self.uncommitted.clear()

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *sql.schema(), _LEDGER_TABLE]

    def insert_in(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], batch: ProjectionBatch
    ) -> None:
        """Inserts the batch's events with the cursor of an open transaction, their hash
        chains, then their read-model rows and the batch's other writes."""
        positions = self._insert_events(c, stored_events)
        assert positions is not None and len(positions) == len(batch.events)
        _link(c, positions, stored_events, self.heads, self.uncommitted)
        batch.positions = list(positions)
        recorded = [
            projector.Recorded(position=p, event=e)
            for p, e in zip(positions, batch.events, strict=True)
        ]
        batch.documents = projector.apply(c, recorded, batch.jobs)
        for write in batch.writes:
            write(c)


# The hash chains (service/store/chain.py), one row per stored event, keyed by its event id
# (the library's `stored_events` table is the library's). Made by migration 1.
_HASHES_TABLE = (
    "CREATE TABLE event_hashes (id INTEGER PRIMARY KEY, job_hash BLOB NOT NULL, "
    "log_hash BLOB NOT NULL)"
)
_HEADS_KEPT = 50_000
_NONE = (0, b"")
_INSERT_HASHES = "INSERT INTO event_hashes (id, job_hash, log_hash) VALUES (?, ?, ?)"
_PREVIOUS_JOB_HASH = (
    "SELECT h.job_hash FROM stored_events AS e JOIN event_hashes AS h ON h.id = e.rowid "
    "WHERE e.originator_id = ? AND e.originator_version = ?"
)


def _link(
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
_LEDGER_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
)


class _Ledger:
    def applied(self, cursor: Cursor) -> set[int]:
        cursor.execute("SELECT version FROM schema_migrations")
        return {int(row[0]) for row in cursor.fetchall()}

    def record(self, cursor: Cursor, migration: migrations.Migration) -> None:
        cursor.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
            (migration.version, migration.name),
        )


class _Factory(SQLiteFactory):
    application_recorder_class = ProjectingRecorder

    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        pool = self.datastore.pool
        self.datastore.pool = _TunedPool(
            synchronous=env.get("SQLITE_SYNCHRONOUS", "FULL"),
            db_name=pool.db_name,
            lock_timeout=pool.lock_timeout,
        )
        pool.close()


class SQLiteEventStore(Application[UUID]):
    """The jobs' event store in one SQLite file (WAL), read models beside the events.

    `Writer` is its only writer in this process.
    """

    name = "jobtrail"
    is_snapshotting_enabled = True

    def construct_factory(self, env: Environment) -> InfrastructureFactory[Any]:
        return cast("InfrastructureFactory[Any]", _Factory(env))

    def construct_transcoder(self) -> Transcoder:
        transcoder = transcoding.SafeJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> SQLiteEventStore:
        """The store of `settings`, its schema migrated to this version's unless `migrate`
        is false (readers that must not write: then see `pending_migrations`)."""
        path = settings.sqlite_path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Processes opening the store at once (`serve --workers N`) take turns, like writers:
        # the library's table creation reads, then writes in a deferred transaction, which
        # SQLite refuses at once (no busy wait) when another process wrote in between.
        with _turn_of(f"{path}.writer-turn"):
            store = cls(
                env={
                    "SQLITE_DBNAME": str(path),
                    "SQLITE_LOCK_TIMEOUT": "10",
                    "SQLITE_SYNCHRONOUS": settings.sqlite_synchronous,
                }
            )
            if migrate:
                try:  # `_transaction`: this turn is already taken
                    migrations.migrate(store._transaction, _Ledger(), MIGRATIONS)
                except BaseException:
                    store.close()
                    raise
        return store

    def pending_migrations(self) -> list[str]:
        done = self.read(_Ledger().applied)
        return [f"{m.version} ({m.name})" for m in MIGRATIONS if m.version not in done]

    @property
    def _datastore(self) -> SQLiteDatastore:
        recorder = self.recorder
        assert isinstance(recorder, ProjectingRecorder)
        return recorder.datastore

    def load(self, job_id: UUID, version: int | None = None) -> Job:
        try:
            with _translated():
                job: Job = self.repository.get(job_id, version=version)
        except AggregateNotFoundError:
            raise errors.JobNotFound(job_id) from None
        assert isinstance(job, Job)
        return job

    @functools.cached_property
    def _turn(self) -> int:
        """A lock file beside the database, open for `flock` (see `transaction`); -1 where
        none can be made (a read-only directory: then SQLite's own lock alone serializes)."""
        path = f"{self._datastore.pool.db_name}.writer-turn"
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return -1

    def close(self) -> None:
        if self.__dict__.get("_turn", -1) >= 0:
            os.close(self.__dict__.pop("_turn"))
        super().close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Cursor]:
        # The writers of several processes (`serve --workers N`) take turns by a blocking
        # flock: the kernel hands the turn over the moment a commit ends. SQLite's own
        # lock would make the waiter sleep and poll (1, 2, 5, 10 ms ...), idling the file.
        if self._turn < 0:
            with self._transaction() as cursor:
                yield cursor
            return
        fcntl.flock(self._turn, fcntl.LOCK_EX)
        try:
            with self._transaction() as cursor:
                yield cursor
        finally:
            fcntl.flock(self._turn, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        datastore = self._datastore
        with _translated(), datastore.get_connection(commit=True) as connection:
            cursor = connection.cursor()
            # IMMEDIATE: the write lock from the start, not from the first write, so that
            # what the transaction reads cannot change under it (another process, or a
            # `write` from another thread) before it commits.
            cursor.execute("BEGIN IMMEDIATE")
            recorder = self.recorder
            assert isinstance(recorder, ProjectingRecorder)
            try:
                yield cursor
            except BaseException:
                recorder.committed(ok=False)
                connection.rollback()
                raise
            try:
                connection.commit()
            except BaseException:
                recorder.committed(ok=False)
                raise
            recorder.committed(ok=True)

    def record(self, cursor: Cursor, batch: ProjectionBatch) -> None:
        recorder = self.recorder
        assert isinstance(recorder, ProjectingRecorder)
        if not batch.events:
            for write in batch.writes:
                write(cursor)
            return
        # Straight to the recorder, in the writer's transaction: `save()` and `events.put`
        # would only add protocol checks per event (slow isinstance on typing Protocols), a
        # transaction of their own, and snapshot logic that the writer does itself.
        to_stored_event = self.mapper.to_stored_event
        with _translated():
            recorder.insert_in(
                cast("SQLiteCursor", cursor), [to_stored_event(e) for e in batch.events], batch
            )

    def written_after(self, cursor: Cursor, position: int) -> tuple[int, set[UUID]]:
        cursor.execute("SELECT MAX(rowid) FROM stored_events")
        newest = int(cursor.fetchone()[0] or 0)
        if newest <= position:  # the common case, one look at the end of a B-tree
            return newest, set()
        cursor.execute(
            "SELECT DISTINCT originator_id FROM stored_events WHERE rowid > ?", (position,)
        )
        return newest, {UUID(row[0]) for row in cursor.fetchall()}

    def put_snapshots(self, snapshots: Sequence[Snapshot]) -> None:
        assert self.snapshots is not None
        with _translated():
            self.snapshots.put(list(snapshots))

    def read(self, query: Callable[[Cursor], T]) -> T:
        with _translated(), self._datastore.transaction(commit=False) as c:
            return query(c)

    def write(self, change: Callable[[Cursor], T]) -> T:
        with _translated(), self._datastore.transaction(commit=True) as c:
            return change(c)

    def recorded_after(self, position: int, limit: int) -> list[projector.Recorded]:
        with _translated():
            notifications = self.recorder.select_notifications(
                start=position, limit=limit, inclusive_of_start=False
            )
        recorded = []
        for notification in notifications:
            event = self.mapper.to_domain_event(notification)
            assert isinstance(event, Job.Event | Job.Created)
            recorded.append(projector.Recorded(position=notification.id, event=event))
        return recorded

    def position_of(self, job_id: UUID, seq: int) -> int | None:
        def query(c: Cursor) -> int | None:
            c.execute(
                "SELECT rowid FROM stored_events WHERE originator_id = ? "
                "AND originator_version = ?",
                (job_id.hex, seq),
            )
            row = c.fetchone()
            return None if row is None else int(row[0])

        return self.read(query)

    def max_position(self) -> int:
        with _translated():
            return self.recorder.max_notification_id() or 0

    def tracking_position(self) -> int:
        return self.read(projector.tracking_position)

    @contextlib.contextmanager
    def scan(self) -> Iterator[Scan]:
        with _translated(), self._datastore.transaction(commit=False) as c:
            yield _Scan(c.sqlite_cursor.connection, self.mapper.to_domain_event)


class _Scan:
    def __init__(self, connection: sqlite3.Connection, decode: Callable[[Any], Any]) -> None:
        self._connection = connection
        self._decode = decode
        self._ids: dict[str, UUID] = {}  # a job's id made once for its events
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
        """The stored event decoded by the library's mapper (upcasting old versions); None
        when it does not decode."""
        uuid = self._ids.get(job_id) if job_id is not None else None
        if uuid is None:
            if len(self._ids) > 10_000:
                self._ids.clear()
            try:
                uuid = self._ids[job_id] = UUID(job_id)  # type: ignore[index]
            except (TypeError, ValueError):
                return None
        try:
            event = self._decode(StoredEvent(uuid, version, topic, state))
        except Exception:  # edited into something that is no event: verify says so
            return None
        if not isinstance(event, Job.Event | Job.Created):
            return None
        return projector.Recorded(position=event_id, event=event)


@contextlib.contextmanager
def _turn_of(path: str) -> Iterator[None]:
    """The writers' turn (see `SQLiteEventStore.transaction`), by a lock file of its own."""
    try:
        turn = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:  # a read-only directory: SQLite's own lock alone serializes
        yield
        return
    try:
        fcntl.flock(turn, fcntl.LOCK_EX)
        yield
    finally:
        os.close(turn)  # releases the lock


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """The library's database errors as the application's (the writer acts on the kind)."""
    try:
        yield
    except (IntegrityError, sqlite3.IntegrityError) as exc:  # another writer saved it first
        raise errors.ConcurrentChange() from exc
    except (OperationalError, InterfaceError, sqlite3.OperationalError) as exc:
        raise errors.StoreUnavailable() from exc  # locked, read-only, full, gone
