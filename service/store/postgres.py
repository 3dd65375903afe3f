"""The event store on PostgreSQL: the `eventsourcing` library's PostgreSQL persistence, with the
read models maintained inside the transaction that records the events (as on SQLite), in one
database that many service instances share.

Global order. Every write transaction takes `LOCK TABLE <events> IN EXCLUSIVE MODE` first
(`transaction()`), the PostgreSQL analogue of SQLite's BEGIN IMMEDIATE: writers of all
instances take turns, so event ids are handed out in commit order, and a reader tailing after
an id never sees a later id commit before an earlier one (rolled-back ids leave gaps that are
never filled). Readers (`SELECT`) are not blocked by that lock.

Schema. Versioned migrations (`PostgresEventStore.migrate`, run by service/store/migrations.py),
applied when a store opens, each in a transaction that holds an advisory lock: instances that
start at once take turns, the first does the work, the others find it done. The library's own
table creation stays off (it fails when several processes run it at once).

Tamper evidence. Each event's hash chain links (service/store/event_hashes.py) are written in
the transaction that stores it, as on SQLite, in `event_hashes` (postgres_audit.py).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, TypeVar, cast
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from psycopg.rows import tuple_row

from projections import postgres as dialect
from service import errors
from service.store import event_hashes, library, migrations, postgres_audit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from contextlib import AbstractContextManager

    from eventsourcing.domain import Snapshot
    from eventsourcing.persistence import InfrastructureFactory, StoredEvent
    from eventsourcing.utils import Environment

    from projections.sql import Cursor
    from service.settings import Settings
    from service.store import chain
    from service.store.base import ProjectionBatch, Scan

T = TypeVar("T")

# pg_advisory_xact_lock's key for schema changes: "jobtrail" in ASCII, as a bigint.
_MIGRATION_LOCK = int.from_bytes(b"jobtrail", "big") & (2**63 - 1)
# The server ends a write transaction left idle this long (see `open`).
_IDLE_SECONDS = 5


class ProjectingRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heads = event_hashes.Heads()  # of the jobs this process chained
        self.layout = postgres_audit.layout(self.events_table_name)

    def insert_in(
        self, cursor: dialect.Cursor, stored_events: Sequence[StoredEvent], batch: ProjectionBatch
    ) -> None:
        """Inserts the batch's events in the transaction of `cursor`, their hash chains, then
        their read-model rows and the batch's other writes."""
        # The library's statements read their rows as dicts: a cursor of their own.
        with cursor.connection.cursor() as curs:
            self._insert_stored_events(curs, stored_events)  # locks (held already), NOTIFY
            positions = self._fetch_ids_after_insert_events(curs, stored_events)
        assert positions is not None
        # The transaction holds the events table's lock: the log's head stays the head.
        event_hashes.link(cursor, self.layout, positions, stored_events, self.heads)
        batch.project(cursor, positions)


class _Factory(PostgresFactory):
    application_recorder_class = ProjectingRecorder


def _library_tables(store: PostgresEventStore) -> list[str | psycopg.sql.Composed]:
    # The library's own statements for its events and snapshots tables (its version is
    # pinned), each once (both use one composite type), the types first as in its
    # create_table().
    statements: dict[str, str | psycopg.sql.Composed] = {}
    for recorder in (store.recorder_of_events, store.recorder_of_snapshots):
        for statement in recorder.sql_create_statements:
            statements.setdefault(statement.as_string(), statement)
    types = [s for text, s in statements.items() if "CREATE TYPE" in text]
    return [*types, *(s for s in statements.values() if s not in types)]


def _run(statements: Sequence[str | psycopg.sql.Composed]) -> Callable[[Cursor], None]:
    def apply(cursor: Cursor) -> None:
        assert isinstance(cursor, dialect.Cursor)
        for statement in statements:
            cursor.raw.execute(statement, prepare=False)

    return apply


class PostgresEventStore(library.LibraryStore):
    """The jobs' event store in a PostgreSQL database, read models beside the events.

    `Writer` is its only writer in this process; other instances write to the same database.
    """

    name = "jobtrail"  # the library names every class anew (its tables, its settings)
    lock_timeout_seconds = 10

    def _translated(self) -> AbstractContextManager[None]:
        return _translated_errors()

    def construct_factory(self, env: Environment) -> InfrastructureFactory[Any]:
        return cast("InfrastructureFactory[Any]", _Factory(env))

    @classmethod
    def open(cls, settings: Settings) -> PostgresEventStore:
        pg = settings.postgres
        # Prefixed with the application's name: the library reads those keys first, also
        # from the process environment, which must not override these.
        env = {
            "POSTGRES_DBNAME": pg.dbname,
            "POSTGRES_HOST": pg.host,
            "POSTGRES_PORT": str(pg.port),
            "POSTGRES_USER": pg.user,
            "POSTGRES_PASSWORD": pg.password,
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_LOCK_TIMEOUT": str(settings.lock_timeout_seconds),
            # The server ends a transaction left idle this long (the library's default, made
            # explicit): an instance frozen while its writer holds the events table's lock
            # holds up the others' writes this long, not until TCP notices. Shorter than the
            # lock wait, so the writers queued behind it get through. (A freeze in the middle
            # of a pipelined statement batch is not idle to the server: only the instance's
            # death, or its thaw, ends that one.)
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": str(_IDLE_SECONDS),
            "POSTGRES_PRE_PING": "y",  # a connection the server dropped is replaced
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",  # unsafe: no table lock (the notes)
            "CREATE_TABLE": "n",  # the migrations below make the tables
        }
        store = cls(env={f"{cls.name.upper()}_{key}": value for key, value in env.items()})
        # How long a writer waits for the events table's lock before its request gets a 503.
        store.lock_timeout_seconds = settings.lock_timeout_seconds
        try:
            with store._translated():
                store.migrate()
        except BaseException:
            store.close()
            raise
        return store

    @property
    def recorder_of_events(self) -> ProjectingRecorder:
        recorder = self.recorder
        assert isinstance(recorder, ProjectingRecorder)
        return recorder

    @property
    def recorder_of_snapshots(self) -> PostgresAggregateRecorder:
        assert self.snapshots is not None
        recorder = self.snapshots.recorder
        assert isinstance(recorder, PostgresAggregateRecorder)
        return recorder

    @property
    def notify_channel(self) -> str:
        """The channel every write transaction NOTIFYs (service/store/postgres_listen.py)."""
        return self.recorder_of_events.channel_name

    @property
    def _datastore(self) -> PostgresDatastore:
        return self.recorder_of_events.datastore

    @property
    def _events_table(self) -> psycopg.sql.Composable:
        return psycopg.sql.Identifier(self.recorder_of_events.events_table_name)

    def migrate(self) -> list[int]:
        """Applies the steps not applied yet (service/store/migrations.py); returns their
        versions. A later release adds steps; it never edits one."""
        steps = (
            migrations.Migration(1, "the event store's tables", _run(_library_tables(self))),
            migrations.Migration(2, "the read models", _run(dialect.schema())),
            migrations.Migration(
                3,
                "hash chains of the stored events",
                postgres_audit.chain_existing_events(self.recorder_of_events.events_table_name),
            ),
        )
        applied = migrations.migrate(self._migration_turn, library.Ledger(), steps)
        # The library's composite type of stored events exists now: let psycopg know it.
        self._datastore.register_type_adapters()
        return [step.version for step in applied]

    @contextlib.contextmanager
    def _migration_turn(self) -> Iterator[Cursor]:
        """A transaction holding the schema's advisory lock (the events table that writers
        lock may not exist yet): instances starting at once take turns."""
        with (
            self._datastore.get_connection() as connection,
            connection.transaction(),
            connection.cursor(row_factory=tuple_row) as raw,
        ):
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            raw.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            yield dialect.Cursor(raw)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Cursor]:
        heads = self.recorder_of_events.heads
        try:
            with (
                self._translated(),
                self._datastore.get_connection() as connection,
                connection.transaction(),
                connection.cursor(row_factory=tuple_row) as raw,
            ):
                # The events table's write lock from the start, not from the first insert:
                # what the transaction reads stays true until it commits, whichever instance
                # writes, and ids are handed out in commit order (a tailer never skips a
                # later-filled id).
                raw.execute(f"SET LOCAL lock_timeout = '{self.lock_timeout_seconds}s'")
                raw.execute(
                    psycopg.sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(self._events_table)
                )
                yield dialect.Cursor(raw)
        except BaseException:
            heads.ended(ok=False)
            raise
        heads.ended(ok=True)  # committed

    def record(self, cursor: Cursor, batch: ProjectionBatch) -> None:
        if not batch.events:
            for write in batch.writes:
                write(cursor)
            return
        assert isinstance(cursor, dialect.Cursor)
        to_stored_event = self.mapper.to_stored_event
        with self._translated():
            self.recorder_of_events.insert_in(
                cursor, [to_stored_event(e) for e in batch.events], batch
            )

    def written_after(self, cursor: Cursor, position: int) -> tuple[int, set[UUID]]:
        assert isinstance(cursor, dialect.Cursor)
        raw, table = cursor.raw, self._events_table
        raw.execute(psycopg.sql.SQL("SELECT MAX(notification_id) FROM {}").format(table))
        row = raw.fetchone()
        newest = int(row[0] or 0) if row else 0
        if newest <= position:
            return newest, set()
        raw.execute(
            psycopg.sql.SQL(
                "SELECT DISTINCT originator_id FROM {} WHERE notification_id > %s"
            ).format(table),
            (position,),
        )
        return newest, {UUID(str(found)) for (found,) in raw.fetchall()}

    def read(self, query: Callable[[Cursor], T]) -> T:
        with (
            self._translated(),
            self._datastore.get_connection() as connection,
            connection.transaction(force_rollback=True),
            connection.cursor(row_factory=tuple_row) as raw,
        ):
            # One snapshot for every statement of the query, as an SQLite read transaction.
            raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            # A table locked by another session (ACCESS EXCLUSIVE) holds a read up to here.
            raw.execute(f"SET LOCAL lock_timeout = '{self.lock_timeout_seconds}s'")
            return query(dialect.Cursor(raw))

    def max_position(self) -> int:
        # Not the library's, which retries for a while when the database is away (/readyz
        # would hang): one read, which fails at once, or after the connect timeout.
        statement = psycopg.sql.SQL("SELECT MAX(notification_id) FROM {}").format(
            self._events_table
        )

        def query(c: Cursor) -> int:
            assert isinstance(c, dialect.Cursor)
            c.raw.execute(statement)
            row = c.raw.fetchone()
            return int(row[0] or 0) if row else 0

        return self.read(query)

    def position_of(self, job_id: UUID, seq: int) -> int | None:
        statement = psycopg.sql.SQL(
            "SELECT notification_id FROM {} WHERE originator_id = %s AND originator_version = %s"
        ).format(self._events_table)

        def query(c: Cursor) -> int | None:
            assert isinstance(c, dialect.Cursor)
            c.raw.execute(statement, (job_id, seq))
            row = c.raw.fetchone()
            return None if row is None else int(row[0])

        return self.read(query)

    def pending_migrations(self) -> list[str]:
        return []  # a PostgreSQL store is migrated when it is opened, whoever opens it

    # Copying a store in (service/store/transfer.py): in one `transaction()`, events under
    # the ids they had, with their hashes, and snapshots; then the id sequence moved on.

    def newest_id(self, cursor: Cursor) -> int:
        """The newest event id, 0 when the store holds no event."""
        assert isinstance(cursor, dialect.Cursor)
        statement = psycopg.sql.SQL("SELECT MAX(notification_id) FROM {}")
        cursor.raw.execute(statement.format(self._events_table))
        row = cursor.raw.fetchone()
        return int(row[0] or 0) if row else 0

    def copy_in(self, cursor: Cursor, links: Sequence[chain.Link]) -> None:
        """Stores events as another store held them (ids, bytes and hashes), in id order."""
        assert isinstance(cursor, dialect.Cursor)
        events = psycopg.sql.SQL(
            "COPY {} (notification_id, originator_id, originator_version, topic, state) FROM STDIN"
        ).format(self._events_table)
        with cursor.raw.copy(events) as copy:
            for link in links:
                assert link.job_id is not None
                copy.write_row((link.id, UUID(link.job_id), link.version, link.topic, link.state))
        with cursor.raw.copy("COPY event_hashes (id, job_hash, log_hash) FROM STDIN") as copy:
            for link in links:
                copy.write_row((link.id, link.job_hash, link.log_hash))

    def snapshots_in(self, cursor: Cursor, snapshots: Sequence[Snapshot]) -> None:
        """Stores snapshots in the transaction of `cursor` (`put_snapshots` has its own)."""
        assert isinstance(cursor, dialect.Cursor)
        statement = psycopg.sql.SQL(
            "COPY {} (originator_id, originator_version, topic, state) FROM STDIN"
        ).format(psycopg.sql.Identifier(self.recorder_of_snapshots.events_table_name))
        with cursor.raw.copy(statement) as copy:
            for snapshot in snapshots:
                s = self.mapper.to_stored_event(snapshot)
                copy.write_row((s.originator_id, s.originator_version, s.topic, s.state))

    def continue_ids_after(self, cursor: Cursor, newest: int) -> None:
        """The next event gets the id after `newest` (events copied in kept their ids)."""
        assert isinstance(cursor, dialect.Cursor)
        table = self.recorder_of_events.events_table_name
        cursor.raw.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s, %s)",
            (table, max(newest, 1), newest > 0),
        )

    @contextlib.contextmanager
    def scan(self) -> Iterator[Scan]:
        with (
            self._translated(),
            self._datastore.get_connection() as connection,
            connection.transaction(force_rollback=True),
        ):
            with connection.cursor() as raw:  # one snapshot for the whole audit
                raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                # An export's reader may pause (a slow pipe): the idle-in-transaction timeout
                # that frees a frozen writer's lock must not end this read; it holds no lock
                # that writers wait for.
                raw.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
            scan = postgres_audit.Scan(
                connection, self.recorder_of_events.events_table_name, self.mapper.to_domain_event
            )
            try:
                yield scan
            finally:
                scan.close()


@contextlib.contextmanager
def _translated_errors() -> Iterator[None]:
    """The library's and psycopg's database errors as the application's."""
    try:
        yield
    except (IntegrityError, psycopg.IntegrityError) as exc:  # another writer saved it first
        raise errors.ConcurrentChange() from exc
    except (OperationalError, InterfaceError, psycopg.OperationalError) as exc:
        raise errors.StoreUnavailable(_fault(exc)) from exc  # unreachable, locked, full


# The server's SQLSTATEs that name a fault; any other operational error is a lost connection.
_FAULTS = {
    "55P03": errors.Fault.LOCKED,  # lock_not_available: lock_timeout ran out
    "53100": errors.Fault.DISK_FULL,  # disk_full
    "25006": errors.Fault.READ_ONLY,  # read_only_sql_transaction: a standby, read-only mode
}


def _fault(exc: BaseException) -> errors.Fault:
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, psycopg.Error):
        cause = cause.__cause__
    sqlstate = cause.sqlstate if isinstance(cause, psycopg.Error) else None
    return _FAULTS.get(sqlstate or "", errors.Fault.UNREACHABLE)
