"""What both backends share of the `eventsourcing` library's `Application`: the store's name
and transcoding, loading a job, storing snapshots, and reading the log after an id. Each
backend (sqlite.py, postgres.py) adds its database's transactions and says how its errors
become the application's (`_translated`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application

from domain.job import Job
from projections import projector
from service import errors
from service.store import migrations, transcoding

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from contextlib import AbstractContextManager

    from eventsourcing.domain import Snapshot
    from eventsourcing.persistence import Transcoder

    from projections.sql import Cursor

T = TypeVar("T")


class Ledger:
    """The migration steps applied (service/store/migrations.py), in the `schema_migrations`
    table each backend creates in its own dialect: version, name, when."""

    def applied(self, cursor: Cursor) -> set[int]:
        cursor.execute("SELECT version FROM schema_migrations")
        return {int(row[0]) for row in cursor.fetchall()}

    def record(self, cursor: Cursor, migration: migrations.Migration) -> None:
        cursor.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
            (migration.version, migration.name),
        )


class LibraryStore(Application[UUID]):
    is_snapshotting_enabled = True

    def _translated(self) -> AbstractContextManager[None]:
        """The database's errors as the application's (`ConcurrentChange`, ...)."""
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def read(self, query: Callable[[Cursor], T]) -> T:
        raise NotImplementedError

    def construct_transcoder(self) -> Transcoder:
        transcoder = transcoding.SafeJSONTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def load(self, job_id: UUID, version: int | None = None) -> Job:
        try:
            with self._translated():
                job: Job = self.repository.get(job_id, version=version)
        except AggregateNotFoundError:
            raise errors.JobNotFound(job_id) from None
        assert isinstance(job, Job)
        return job

    def put_snapshots(self, snapshots: Sequence[Snapshot]) -> None:
        assert self.snapshots is not None
        with self._translated():
            self.snapshots.put(list(snapshots))

    def write(self, change: Callable[[Cursor], T]) -> T:
        with self.transaction() as c:
            return change(c)

    def recorded_after(self, position: int, limit: int) -> list[projector.Recorded]:
        with self._translated():
            notifications = self.recorder.select_notifications(
                start=position, limit=limit, inclusive_of_start=False
            )
        recorded = []
        for notification in notifications:
            event = self.mapper.to_domain_event(notification)
            assert isinstance(event, Job.Event | Job.Created)
            recorded.append(projector.Recorded(position=notification.id, event=event))
        return recorded

    def max_position(self) -> int:
        with self._translated():
            return self.recorder.max_notification_id() or 0

    def tracking_position(self) -> int:
        return self.read(projector.tracking_position)

    def disk_full(self) -> bool:
        return False  # where the store cannot tell (PostgreSQL's disk is the server's)
