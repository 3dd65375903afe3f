"""The event store: the `eventsourcing` library's SQLite persistence, with the read models
maintained inside the transaction that records the events (read-your-writes, exactly once).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import InterfaceError
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteFactory,
)

from domain.job import Job
from projections import projector, sql
from service.store import transcoding

if TYPE_CHECKING:
    from collections.abc import Sequence

    from eventsourcing.domain import Snapshot
    from eventsourcing.persistence import InfrastructureFactory, StoredEvent, Transcoder
    from eventsourcing.utils import Environment

    from service.settings import Settings


@dataclass(slots=True)
class ProjectionBatch:
    """What one transaction records: its events in order, and their jobs' new states."""

    events: list[Job.Event | Job.Created]
    jobs: dict[UUID, Job]
    # Rows that are not events (lease renewals): written after the projection's rows.
    writes: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    documents: dict[UUID, str] = field(default_factory=dict)


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
    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *sql.schema()]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._insert_events(c, stored_events)
        batch: ProjectionBatch | None = kwargs.get("projection")
        if batch is not None and positions is not None:
            assert len(positions) == len(batch.events)
            batch.positions = list(positions)
            recorded = [
                projector.Recorded(position=p, event=e)
                for p, e in zip(positions, batch.events, strict=True)
            ]
            batch.documents = projector.apply(c, recorded, batch.jobs)
            for statement, parameters in batch.writes:
                c.execute(statement, parameters)
        return positions


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


class EventStore(Application[UUID]):
    """The jobs' event store; `Writer` is its only writer in this process."""

    name = "jobtrail"
    is_snapshotting_enabled = True

    def construct_factory(self, env: Environment) -> InfrastructureFactory[Any]:
        return cast("InfrastructureFactory[Any]", _Factory(env))

    def construct_transcoder(self) -> Transcoder:
        transcoder = transcoding.SafeJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    @classmethod
    def open(cls, settings: Settings) -> EventStore:
        path = settings.sqlite_path
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(
            env={
                "SQLITE_DBNAME": str(path),
                "SQLITE_LOCK_TIMEOUT": "10",
                "SQLITE_SYNCHRONOUS": settings.sqlite_synchronous,
            }
        )

    def load(self, job_id: UUID, version: int | None = None) -> Job:
        job: Job = self.repository.get(job_id, version=version)
        assert isinstance(job, Job)
        return job

    def record(self, batch: ProjectionBatch) -> None:
        """Records the batch's events and read-model rows in one transaction."""
        # Straight to the event store: `save()` would only add protocol checks per event
        # (slow isinstance on typing Protocols) and snapshot logic that the writer does itself.
        self.events.put(batch.events, projection=batch)

    def write_rows(self, writes: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Writes rows that come with no event, in one transaction."""
        with self.recorder.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
            for statement, parameters in writes:
                c.execute(statement, parameters)

    def put_snapshots(self, snapshots: list[Snapshot]) -> None:
        """Stores snapshots in one transaction (after the events they summarise committed)."""
        assert self.snapshots is not None
        self.snapshots.put(snapshots)

    def position_of(self, job_id: UUID, seq: int) -> int | None:
        """The global event id of a job's event number `seq`."""
        with self.recorder.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            c.execute(
                "SELECT rowid FROM stored_events WHERE originator_id = ? "
                "AND originator_version = ?",
                (job_id.hex, seq),
            )
            row = c.fetchone()
        return None if row is None else int(row[0])

    def max_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def tracking_position(self) -> int:
        with self.recorder.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            c.execute(sql.query("tracking_position"))
            return int(c.fetchone()[0])
