"""The event store: the `eventsourcing` library's SQLite persistence, with the read models
maintained inside the transaction that records the events (read-your-writes, exactly once).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from typing import TYPE_CHECKING, Any, TypeVar, cast
from uuid import UUID

from eventsourcing.persistence import (
    ConnectionUnavailableError,
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

from projections import sql
from service import errors
from service.store import event_hashes, library, migrations, sqlite_audit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from contextlib import AbstractContextManager
    from pathlib import Path

    from eventsourcing.persistence import InfrastructureFactory
    from eventsourcing.utils import Environment

    from projections.sql import Cursor
    from service.settings import Settings
    from service.store.base import ProjectionBatch, Scan

T = TypeVar("T")
# Less free space than this on the database's file system is a full disk (`disk_full`):
# a request body's worth (1 MiB by default), which a write may need in the log.
_SPACE_NEEDED = 1 << 20


class _TunedPool(SQLiteConnectionPool):
    def __init__(self, *, synchronous: str, **kwargs: Any) -> None:
        self.synchronous = synchronous
        self._read_only: dict[int, bool] = {}  # by id() of the connections open now
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
        pooled = SQLiteConnection(sqlite_conn=connection, max_age=self.max_age)
        # SQLite opens a file it may not write (read-only, immutable, on a read-only mount)
        # read-only, without a word, and the connection stays read-only after the file is
        # writable again: such a one serves this use only, and is never pooled. (The same
        # check as its open's, and no descriptor opened: closing one would drop SQLite's
        # POSIX locks on the file.)
        self._read_only[id(pooled)] = not os.access(
            self.db_name, os.W_OK, effective_ids=os.access in os.supports_effective_ids
        )
        return pooled

    def put_connection(self, conn: SQLiteConnection) -> None:
        if self._read_only.pop(id(conn), False):
            conn.close()
        super().put_connection(conn)


class ProjectingRecorder(SQLiteApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heads = event_hashes.Heads()  # of the jobs this process chained

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            *sql.schema(),
            sqlite_audit.LEDGER_TABLE,
        ]

    def create_table(self) -> None:
        # As the library's, in a transaction that takes the write lock first: its deferred
        # one reads the schema, then writes (the tracking row), and SQLite fails that at once,
        # no waiting, when another process (`serve --workers N`) writes meanwhile.
        with self.datastore.get_connection(commit=True) as connection:
            cursor = connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                self._create_table(cursor)
            except BaseException:
                connection.rollback()
                raise
            connection.commit()

    def insert_in(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], batch: ProjectionBatch
    ) -> None:
        """Inserts the batch's events with the cursor of an open transaction, their hash
        chains, then their read-model rows and the batch's other writes."""
        positions = self._insert_events(c, stored_events)
        assert positions is not None
        event_hashes.link(c, sqlite_audit.LAYOUT, positions, stored_events, self.heads)
        batch.project(c, positions)


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


class SQLiteEventStore(library.LibraryStore):
    """The jobs' event store in one SQLite file (WAL), read models beside the events.

    `Writer` is its only writer in this process.
    """

    name = "jobtrail"  # the library names every class anew (its tables, its settings)

    def _translated(self) -> AbstractContextManager[None]:
        return _translated_errors()

    def construct_factory(self, env: Environment) -> InfrastructureFactory[Any]:
        return cast("InfrastructureFactory[Any]", _Factory(env))

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> SQLiteEventStore:
        """The store of `settings`, its schema migrated to this version's unless `migrate`
        is false (readers that must not write: then see `pending_migrations`)."""
        path = settings.sqlite_path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Creating the tables reads the schema, then writes: two processes starting at once
        # (`serve --workers N`) would each find the other's write in the way (SQLite's
        # busy snapshot, which no timeout waits out). One at a time, then; migrations too.
        with _one_at_a_time(path):
            store = cls(
                env={
                    "SQLITE_DBNAME": str(path),
                    "SQLITE_LOCK_TIMEOUT": str(settings.lock_timeout_seconds),
                    "SQLITE_SYNCHRONOUS": settings.sqlite_synchronous,
                }
            )
            if migrate:
                try:
                    migrations.migrate(store.transaction, library.Ledger(), sqlite_audit.MIGRATIONS)
                except BaseException:
                    store.close()
                    raise
        return store

    def pending_migrations(self) -> list[str]:
        done = self.read(library.Ledger().applied)
        steps = sqlite_audit.MIGRATIONS
        return [f"{m.version} ({m.name})" for m in steps if m.version not in done]

    def disk_full(self) -> bool:
        found = os.statvfs(self._datastore.pool.db_name)
        blocks = found.f_bfree if os.geteuid() == 0 else found.f_bavail  # root: reserved too
        return blocks * found.f_frsize < _SPACE_NEEDED

    @property
    def _datastore(self) -> SQLiteDatastore:
        recorder = self.recorder
        assert isinstance(recorder, ProjectingRecorder)
        return recorder.datastore

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Cursor]:
        datastore = self._datastore
        recorder = self.recorder
        assert isinstance(recorder, ProjectingRecorder)
        with self._translated(), datastore.get_connection(commit=True) as connection:
            cursor = connection.cursor()
            # IMMEDIATE: the write lock from the start, not from the first write, so that
            # what the transaction reads cannot change under it (another process, or a
            # `write` from another thread) before it commits; and a writer that must wait
            # waits (a deferred transaction that read first would fail at once instead).
            # Several processes' writers take turns on it; one that waits meanwhile gathers
            # a larger group (a strict turn-taking by flock halved their throughput: each
            # commit held two requests, so twice the fsyncs).
            try:
                cursor.execute("BEGIN IMMEDIATE")
                yield cursor
                connection.commit()
            except BaseException as exc:
                recorder.heads.ended(ok=False)
                _end_failed(connection, exc)
                raise
            recorder.heads.ended(ok=True)

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
        with self._translated():
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

    def read(self, query: Callable[[Cursor], T]) -> T:
        with self._translated(), self._datastore.transaction(commit=False) as c:
            return query(c)

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

    @contextlib.contextmanager
    def scan(self) -> Iterator[Scan]:
        with self._translated(), self._datastore.transaction(commit=False) as c:
            yield sqlite_audit.Scan(c.sqlite_cursor.connection, self.mapper.to_domain_event)


def _end_failed(connection: SQLiteConnection, exc: BaseException) -> None:
    """After a write transaction failed: the connection closed when the database failed it,
    other than by a lock (after an I/O error on a file gone read-only, only a connection
    opened anew says what is wrong), else rolled back (a failed COMMIT leaves the
    transaction open)."""
    found = _sqlite_error(exc)
    if found is not None and fault(found) is not errors.Fault.LOCKED:
        connection.close()  # which rolls back whatever it held
    else:
        connection.rollback()


@contextlib.contextmanager
def _one_at_a_time(db_path: Path) -> Iterator[None]:
    """Holds a `flock` on a file beside the database, where one can be made."""
    try:
        fd = os.open(f"{db_path}.open-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:  # a read-only directory: nothing to create there anyway
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # which releases the lock


@contextlib.contextmanager
def _translated_errors() -> Iterator[None]:
    """The library's database errors as the application's (the writer acts on the kind)."""
    try:
        yield
    except (IntegrityError, sqlite3.IntegrityError) as exc:  # another writer saved it first
        raise errors.ConcurrentChange() from exc
    except (OperationalError, InterfaceError, sqlite3.OperationalError) as exc:
        raise errors.StoreUnavailable(fault(exc)) from exc  # locked, read-only, full, gone


# SQLite's primary result codes (the low byte of an extended one) that name a fault.
_FAULTS = {
    sqlite3.SQLITE_BUSY: errors.Fault.LOCKED,
    sqlite3.SQLITE_LOCKED: errors.Fault.LOCKED,
    sqlite3.SQLITE_READONLY: errors.Fault.READ_ONLY,
    sqlite3.SQLITE_FULL: errors.Fault.DISK_FULL,
    sqlite3.SQLITE_CANTOPEN: errors.Fault.UNREACHABLE,
}


def _sqlite_error(exc: BaseException) -> sqlite3.Error | None:
    """SQLite's error that `exc` is, or was raised from."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, sqlite3.Error):
        cause = cause.__cause__
    return cause


def fault(exc: BaseException) -> errors.Fault:
    """What SQLite's error (`exc`, or the one it was raised from) says is wrong."""
    code = getattr(_sqlite_error(exc), "sqlite_errorcode", None)
    if isinstance(exc, ConnectionUnavailableError) and code is None:
        return errors.Fault.LOCKED  # the pool's writer connection stayed busy too long
    return _FAULTS.get((code or 0) & 0xFF, errors.Fault.IO_ERROR)
