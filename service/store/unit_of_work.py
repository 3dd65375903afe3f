"""A unit of work: the jobs one group of the writer's commands reads and changes, with what
else the group's transaction must hold (lease renewals, idempotency keys, snapshots). Its reads
of the read models run in that transaction, which holds the write lock from its start."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar
from uuid import UUID

from domain.job import Job

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from eventsourcing.domain import Snapshot

    from projections.sql import Cursor
    from service.store.base import Write

T = TypeVar("T")
P = ParamSpec("P")
_NO_LEASES: Mapping[UUID, tuple[str, float, int]] = MappingProxyType({})


class UnitOfWork:
    """The jobs one group of commands reads and changes."""

    def __init__(
        self,
        *,
        load: Callable[[UUID], Job],
        new_id: Callable[[], UUID],
        cursor: Cursor,
        clock: Callable[[], datetime],
        interval: int,
        known_leases: Mapping[UUID, tuple[str, float, int]] = _NO_LEASES,
    ) -> None:
        self._load = load
        self._new_id = new_id
        self._cursor = cursor
        self._clock = clock
        self._interval = interval
        self.jobs: dict[UUID, Job] = {}
        # Snapshots taken as jobs pass every `interval` events, even mid-group, so that a
        # historical load never replays more than `interval` events; stored after the commit.
        self.snapshots: list[Snapshot] = []
        self._snapshotted: dict[UUID, int] = {}
        # Pending-event counts of the jobs the current command touched, before it did.
        self._baseline: dict[UUID, int] = {}
        # Statuses of the jobs the current command touched, before it did (for policies).
        self.statuses_before: dict[UUID, str] = {}
        # Idempotency keys claimed by this group's commands, not yet in the read model.
        self.keys: dict[tuple[str, str], tuple[str, UUID]] = {}
        # Rows that are not events (lease renewals), written in the group's transaction.
        self.writes: list[Write] = []
        # Leases as this group has read, set or renewed them: job id → (token, seconds,
        # expiry ms), or None when the job holds none (see service/workers/leases.py).
        self.leases: dict[UUID, tuple[str, float, int] | None] = {}
        # Leases as earlier groups of this writer committed them (see leases.current).
        self.known_leases = known_leases
        self.now = clock()

    def get(self, job_id: UUID) -> Job:
        """The job, as changed so far in this group; NotFound when it does not exist."""
        job = self.jobs.get(job_id)
        if job is None:
            job = self._load(job_id)
            self.jobs[job_id] = job
            self._snapshotted[job_id] = job.version
        self._baseline.setdefault(job_id, len(job.pending_events))
        self.statuses_before.setdefault(job_id, job.batch_status)
        return job

    def new_job_id(self) -> UUID:
        return self._new_id()

    def add(self, job: Job) -> None:
        self.jobs[job.id] = job
        self._baseline.setdefault(job.id, 0)
        self._snapshotted.setdefault(job.id, 0)

    def read(
        self, query: Callable[Concatenate[Cursor, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`query(cursor, ...)` on the read models, in the group's transaction."""
        return query(self._cursor, *args, **kwargs)

    def end(self) -> None:
        """Ends a command that succeeded: snapshots the jobs it carried past an interval."""
        for job_id in self._baseline:
            job = self.jobs[job_id]
            if job.version // self._interval > self._snapshotted[job_id] // self._interval:
                # A deep copy: later commands in the group go on changing the job.
                self.snapshots.append(copy.deepcopy(Job.Snapshot.take(job)))
                self._snapshotted[job_id] = job.version

    def begin(self) -> None:
        """Starts the next command."""
        self._baseline.clear()
        self.statuses_before.clear()
        # Event timestamps never go backwards within a process, even if the clock does.
        self.now = max(self.now, self._clock())

    def changed(self) -> bool:
        """Whether the current command triggered events on any job it touched."""
        return any(len(self.jobs[i].pending_events) != n for i, n in self._baseline.items())
