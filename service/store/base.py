"""What the writer, the rebuild and the audit need of an event store: one small interface.

A backend (service/store/sqlite.py; PostgreSQL next) keeps the library's persistence and the
read models in one database, so that the events of a transaction, their read-model rows and the
tracking position commit together. Nothing outside a backend touches the library's recorders,
datastores or mappers: they are its business.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from projections import projector

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from uuid import UUID

    from eventsourcing.domain import Snapshot

    from domain.job import Job
    from projections.projector import Recorded
    from projections.sql import Cursor
    from service.store.chain import Link

T = TypeVar("T")
# A write that is not an event (a lease renewal), run in the transaction of a batch's events.
Write = Callable[["Cursor"], None]


@dataclass(slots=True)
class ProjectionBatch:
    """What one transaction records: its events in order, and their jobs' new states."""

    events: list[Job.Event | Job.Created]
    jobs: dict[UUID, Job]
    # Run after the projection's rows, in the same transaction.
    writes: list[Write] = field(default_factory=list)
    # Filled in by `record`: each event's global id, and each changed job's rendered document.
    positions: list[int] = field(default_factory=list)
    documents: dict[UUID, str] = field(default_factory=dict)

    def project(self, cursor: Cursor, positions: Sequence[int]) -> None:
        """In the transaction that has just stored the events (their ids `positions`): their
        read-model rows, then the batch's other writes."""
        assert len(positions) == len(self.events)
        self.positions = list(positions)
        recorded = [
            projector.Recorded(position=p, event=e)
            for p, e in zip(positions, self.events, strict=True)
        ]
        self.documents = projector.apply(cursor, recorded, self.jobs)
        for write in self.writes:
            write(cursor)


class Scan(Protocol):
    """One read transaction over the whole store, for `audit verify`: what it reads is one
    consistent state of the store, however long it takes and whoever writes meanwhile."""

    def cursor(self) -> Cursor:
        """A new cursor in the scan's transaction (for the read models' own queries)."""
        ...

    def log(self) -> Iterator[Link]:
        """Every event id that holds an event or its hashes, in id order, without the
        events' contents: the ids, jobs, versions and stored hashes."""
        ...

    def events(self, after: int, *, hashes: bool = False) -> Iterator[tuple[Link, Recorded | None]]:
        """Every stored event after the id `after`, in id order, decoded (None where it
        does not decode), with its stored hashes if `hashes` (else None)."""
        ...

    def jobs(self) -> Iterator[tuple[Link, Recorded | None]]:
        """Every stored event in (job, version) order, with its stored hashes, and decoded
        (None where it does not decode)."""
        ...


class EventStore(Protocol):
    """The jobs' event store and the read models kept beside it.

    Failures come as the application's errors: `JobNotFound`, `ConcurrentChange` (another
    writer saved a version first), `StoreUnavailable` (the database cannot take the write).
    """

    def load(self, job_id: UUID, version: int | None = None) -> Job:
        """The job as of `version` (its newest by default), from its newest snapshot on."""
        ...

    def transaction(self) -> AbstractContextManager[Cursor]:
        """One write transaction, holding the database's write lock from its start (so what
        it reads stays true until it commits, whoever else writes to the database); commits
        when the block ends, rolls back when it raises."""
        ...

    def record(self, cursor: Cursor, batch: ProjectionBatch) -> None:
        """Records the batch's events (there may be none), the read-model rows they make and
        the batch's other writes in the transaction of `cursor`; fills in positions and
        documents."""
        ...

    def written_after(self, cursor: Cursor, position: int) -> tuple[int, set[UUID]]:
        """In the transaction of `cursor`: the newest event id, and the jobs with events after
        `position` (what other processes wrote since this one last looked)."""
        ...

    def put_snapshots(self, snapshots: Sequence[Snapshot]) -> None:
        """Stores snapshots of jobs whose events have committed, in one transaction."""
        ...

    def read(self, query: Callable[[Cursor], T]) -> T:
        """Runs `query` in one read transaction of the store's database."""
        ...

    def write(self, change: Callable[[Cursor], T]) -> T:
        """Runs `change` in one write transaction of the store's database (read models only:
        events are written by `record`)."""
        ...

    def recorded_after(self, position: int, limit: int) -> list[Recorded]:
        """Up to `limit` events after the global id `position`, decoded, in id order."""
        ...

    def position_of(self, job_id: UUID, seq: int) -> int | None:
        """The global event id of a job's event number `seq`."""
        ...

    def max_position(self) -> int:
        """The id of the newest event, 0 when there is none."""
        ...

    def tracking_position(self) -> int:
        """The id of the last event the read models have applied."""
        ...

    def scan(self) -> AbstractContextManager[Scan]:
        """A read transaction over the events, their hashes and the read models."""
        ...

    def disk_full(self) -> bool:
        """Whether the file system that holds the database has (almost) no space left: a
        write that fits in space the database holds already can commit on a full disk."""
        ...

    def pending_migrations(self) -> list[str]:
        """The store's schema migrations not applied yet (a store opened without migrating)."""
        ...

    def close(self) -> None: ...
