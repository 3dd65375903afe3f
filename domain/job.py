from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from eventsourcing.domain import Aggregate

from domain import batch, errors, retry
from domain.states import JobState, check_transition

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

PRIORITIES = ("low", "normal", "high")
LOG_LEVELS = ("debug", "info", "success", "warning", "error")
PROGRESS_FIELDS = ("percent", "stage", "message", "total", "completed", "failed")


def empty_progress() -> dict[str, Any]:
    return dict.fromkeys(PROGRESS_FIELDS)


class Job(Aggregate):
    """A long-running job: its state is whatever its events fold to.

    Every command checks its rules before it triggers any event, so a command that
    raises has changed nothing. Event `apply` methods never check rules: they replay
    history, which was valid when it was recorded.
    """

    if TYPE_CHECKING:  # Declared here so the library does not make Job a dataclass.
        type: str
        name: str | None
        category: str | None
        priority: str
        owner: str
        payload: Any
        metadata: dict[str, Any]
        starred: bool
        status: str
        progress: dict[str, Any]
        children: dict[str, int] | None
        cancel_requested: bool
        result: Any
        result_type: str | None
        error: dict[str, Any] | None
        attempt: int
        max_attempts: int
        run_at: datetime | None
        started_at: datetime | None
        finished_at: datetime | None
        parent_id: str | None
        replayed_from: str | None
        worker_id: str | None
        lease_token: str | None
        lease_expires_at: datetime | None
        deleted: bool

    class Event(Aggregate.Event):
        kind: ClassVar[str] = ""
        # Fields recorded in the store but never shown in the API's event `data`.
        private: ClassVar[frozenset[str]] = frozenset()

    class Created(Aggregate.Created):
        kind: ClassVar[str] = "created"
        private: ClassVar[frozenset[str]] = frozenset({"idempotency_key", "request_hash"})
        type: str
        name: str | None
        category: str | None
        priority: str
        owner: str
        payload: Any
        metadata: dict[str, Any]
        max_attempts: int
        run_at: datetime | None
        parent_id: str | None
        replayed_from: str | None
        idempotency_key: str | None
        request_hash: str | None
        batch_size: int | None

        def apply(self, job: Job) -> None:
            job.type = self.type
            job.name = self.name
            job.category = self.category
            job.priority = self.priority
            job.owner = self.owner
            job.payload = self.payload
            job.metadata = dict(self.metadata)
            job.starred = False
            job.status = JobState.PENDING.value
            job.progress = empty_progress()
            job.children = None
            job.cancel_requested = False
            job.result = None
            job.result_type = None
            job.error = None
            job.attempt = 0
            job.max_attempts = self.max_attempts
            job.run_at = self.run_at
            job.started_at = None
            job.finished_at = None
            job.parent_id = self.parent_id
            job.replayed_from = self.replayed_from
            job.worker_id = None
            job.lease_token = None
            job.lease_expires_at = None
            job.deleted = False
            if self.batch_size is not None:
                # A batch parent's work is its children's: it runs from the start (no worker
                # ever claims it) and finishes when they all have.
                job.children = batch.new_counters(self.batch_size)
                job.progress = job.progress | batch.progress(job.children)
                job.status = JobState.RUNNING.value
                job.started_at = self.timestamp

    class Started(Event):
        """Version 2 records the lease's length as granted (`lease_seconds`); version 1
        events, stored before it, get it from their expiry and time (`upcast_v1_v2`)."""

        class_version: ClassVar[int] = 2
        kind: ClassVar[str] = "started"
        private: ClassVar[frozenset[str]] = frozenset({"lease_token", "lease_seconds"})
        attempt: int
        worker_id: str
        lease_token: str
        lease_expires_at: datetime
        lease_seconds: float

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            granted = state["lease_expires_at"] - state["timestamp"]
            state["lease_seconds"] = granted.total_seconds()

        def apply(self, job: Job) -> None:
            job.status = JobState.RUNNING.value
            job.attempt = self.attempt
            job.worker_id = self.worker_id
            job.lease_token = self.lease_token
            job.lease_expires_at = self.lease_expires_at
            job.started_at = self.timestamp
            job.run_at = None
            job.progress = empty_progress()  # each attempt reports its own progress

    class Progressed(Event):
        kind: ClassVar[str] = "progress"
        progress: dict[str, Any]

        def apply(self, job: Job) -> None:
            job.progress = job.progress | self.progress

    class ChildrenProgressed(Event):
        """A batch parent's counters after one of its children changed status."""

        kind: ClassVar[str] = "progress"
        children: dict[str, int]
        progress: dict[str, Any]

        def apply(self, job: Job) -> None:
            job.children = dict(self.children)
            job.progress = job.progress | self.progress

    class Logged(Event):
        kind: ClassVar[str] = "log"
        level: str
        message: str
        data: Any

    class Succeeded(Event):
        kind: ClassVar[str] = "succeeded"
        result: Any
        result_type: str | None

        def apply(self, job: Job) -> None:
            job.result = self.result
            job.result_type = self.result_type
            job.error = None  # an earlier attempt's error is history now
            _finish(job, JobState.SUCCEEDED, self.timestamp)

    class Failed(Event):
        kind: ClassVar[str] = "failed"
        error: dict[str, Any]

        def apply(self, job: Job) -> None:
            job.error = self.error
            _finish(job, JobState.FAILED, self.timestamp)

    class RetryScheduled(Event):
        kind: ClassVar[str] = "retry_scheduled"
        error: dict[str, Any]
        run_at: datetime

        def apply(self, job: Job) -> None:
            job.error = self.error
            job.status = JobState.PENDING.value
            job.run_at = self.run_at
            _release_lease(job)

    class CancelRequested(Event):
        kind: ClassVar[str] = "cancel_requested"
        reason: str | None

        def apply(self, job: Job) -> None:
            job.cancel_requested = True

    class Cancelled(Event):
        kind: ClassVar[str] = "cancelled"
        reason: str | None

        def apply(self, job: Job) -> None:
            _finish(job, JobState.CANCELLED, self.timestamp)

    class Updated(Event):
        kind: ClassVar[str] = "updated"
        changes: dict[str, Any]

        def apply(self, job: Job) -> None:
            if "name" in self.changes:
                job.name = self.changes["name"]
            if "starred" in self.changes:
                job.starred = self.changes["starred"]
            if "metadata" in self.changes:
                job.metadata = dict(self.changes["metadata"])

    class Deleted(Event):
        kind: ClassVar[str] = "deleted"

        def apply(self, job: Job) -> None:
            job.deleted = True

    # Commands. Each takes `now` from the caller: the domain never reads a clock.

    @classmethod
    def create(
        cls,
        *,
        job_id: UUID,
        now: datetime,
        type: str,
        owner: str,
        payload: Any = None,
        name: str | None = None,
        category: str | None = None,
        priority: str = "normal",
        metadata: dict[str, Any] | None = None,
        max_attempts: int = 1,
        run_at: datetime | None = None,
        parent_id: str | None = None,
        replayed_from: str | None = None,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        batch_size: int | None = None,
    ) -> Job:
        return cls._create(
            cls.Created,
            id=job_id,
            timestamp=now,
            type=type,
            name=name,
            category=category,
            priority=priority,
            owner=owner,
            payload=payload,
            metadata=metadata or {},
            max_attempts=max_attempts,
            run_at=run_at,
            parent_id=parent_id,
            replayed_from=replayed_from,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            batch_size=batch_size,
        )

    @property
    def state(self) -> JobState:
        return JobState(self.status)

    @property
    def is_finished(self) -> bool:
        return self.state.is_terminal

    @property
    def batch_status(self) -> str:
        """The status this job counts under in its batch: deleted unfinished is cancelled."""
        if self.deleted and not self.is_finished:
            return JobState.CANCELLED.value
        return self.status

    def start(
        self, *, worker_id: str, lease_token: str, lease_expires_at: datetime, now: datetime
    ) -> None:
        self.check_exists()
        self.check_state(JobState.RUNNING, "started")
        if self.run_at is not None and self.run_at > now:
            raise errors.InvalidTransition(job_id=str(self.id), state="scheduled", action="started")
        self.trigger_event(
            self.Started,
            timestamp=now,
            attempt=self.attempt + 1,
            worker_id=worker_id,
            lease_token=lease_token,
            lease_expires_at=lease_expires_at,
            lease_seconds=(lease_expires_at - now).total_seconds(),
        )

    def report_progress(self, progress: dict[str, Any], *, now: datetime) -> None:
        self.check_running("given progress")
        self.trigger_event(self.Progressed, timestamp=now, progress=progress)

    def log(self, *, level: str, message: str, data: Any, now: datetime) -> None:
        self.check_running("given log lines")
        self.trigger_event(self.Logged, timestamp=now, level=level, message=message, data=data)

    def succeed(self, *, result: Any, result_type: str | None, now: datetime) -> None:
        self.check_exists()
        self.check_state(JobState.SUCCEEDED, "succeeded")
        self.trigger_event(self.Succeeded, timestamp=now, result=result, result_type=result_type)

    def fail(
        self,
        *,
        error: dict[str, Any],
        retry_allowed: bool,
        now: datetime,
        policy: retry.RetryPolicy,
        jitter: float,
    ) -> None:
        self.check_exists()
        self.check_state(JobState.FAILED, "failed")
        if self.cancel_requested:  # the user asked it to stop: it ends cancelled, not retried
            self.trigger_event(
                self.Cancelled, timestamp=now, reason="failed after a cancel request"
            )
            return
        run_at = retry.decide_retry(
            self, retry=retry_allowed, now=now, policy=policy, jitter=jitter
        )
        if run_at is None:
            self.trigger_event(self.Failed, timestamp=now, error=error)
        else:
            self.trigger_event(self.RetryScheduled, timestamp=now, error=error, run_at=run_at)

    def cancel(self, *, reason: str | None, now: datetime) -> None:
        """Cancels a pending job at once; asks a running one's worker to stop.

        Asking again, while the worker has not stopped yet or once it has, changes nothing.
        """
        self.check_exists()
        if self.state is JobState.CANCELLED:
            return
        self.check_state(JobState.CANCELLED, "cancelled")
        if self.state is JobState.PENDING:
            self.trigger_event(self.Cancelled, timestamp=now, reason=reason)
        elif not self.cancel_requested:
            self.trigger_event(self.CancelRequested, timestamp=now, reason=reason)

    def acknowledge_cancel(self, *, now: datetime) -> None:
        self.check_running("cancelled by its worker")
        if not self.cancel_requested:
            raise errors.InvalidTransition(
                job_id=str(self.id), state=self.status, action="cancelled without a request"
            )
        self.trigger_event(self.Cancelled, timestamp=now, reason=None)

    def expire_lease(self, *, now: datetime, policy: retry.RetryPolicy, jitter: float) -> None:
        """The worker stopped renewing its lease: a failed attempt, retried when attempts are
        left; a job asked to stop ends cancelled instead."""
        self.check_running("expired")
        self.fail(
            error={
                "message": "The worker's lease expired.",
                "code": "lease_expired",
                "details": None,
            },
            retry_allowed=True,
            now=now,
            policy=policy,
            jitter=jitter,
        )

    def record_child(self, *, old: str, new: str, now: datetime) -> None:
        """A child moved from status `old` to `new`: count it, and finish the batch when every
        child has finished (succeeded if all did, cancelled if a cancel was asked, else failed).
        """
        if self.children is None:
            raise errors.InvalidTransition(
                job_id=str(self.id), state=self.status, action="given a child's change"
            )
        if old == new or self.deleted:
            return
        counts = batch.moved(self.children, old, new)
        self.trigger_event(
            self.ChildrenProgressed, timestamp=now, children=counts, progress=batch.progress(counts)
        )
        ending = (
            None
            if self.is_finished
            else batch.outcome(counts, cancel_requested=self.cancel_requested)
        )
        if ending == "cancelled":
            self.trigger_event(self.Cancelled, timestamp=now, reason="batch cancelled")
        elif ending == "succeeded":
            self.trigger_event(self.Succeeded, timestamp=now, result=counts, result_type="batch")
        elif ending == "failed":
            self.trigger_event(self.Failed, timestamp=now, error=batch.failure(counts))

    def update(self, changes: dict[str, Any], *, now: datetime) -> None:
        self.check_exists()
        self.trigger_event(self.Updated, timestamp=now, changes=changes)

    def delete(self, *, now: datetime) -> None:
        """Deletes the job; a running job is cancelled first, revoking its lease."""
        self.check_exists()
        if self.state is JobState.RUNNING:
            self.trigger_event(self.Cancelled, timestamp=now, reason="deleted")
        self.trigger_event(self.Deleted, timestamp=now)

    # Guards.

    def check_exists(self) -> None:
        if self.deleted:
            raise errors.JobDeleted(job_id=str(self.id))

    def check_state(self, target: JobState, action: str) -> None:
        check_transition(str(self.id), self.state, target, action)

    def check_running(self, action: str) -> None:
        self.check_exists()
        if self.state is not JobState.RUNNING:
            raise errors.InvalidTransition(job_id=str(self.id), state=self.status, action=action)

    def check_lease(self, token: str, now: datetime, expires_at: datetime | None = None) -> None:
        """The token must be the running attempt's and unexpired at `now`.

        `expires_at` is the lease's renewed expiry, when the caller keeps renewals (they are
        not events); without it, the expiry the attempt started with.
        """
        self.check_exists()
        expiry = self.lease_expires_at if expires_at is None else expires_at
        expired = expiry is None or expiry <= now
        if self.state is not JobState.RUNNING or token != self.lease_token or expired:
            raise errors.LeaseMismatch(job_id=str(self.id))


# The event types the API shows (an event's `type`), in the order a job's life meets them.
EVENT_KINDS = tuple(
    dict.fromkeys(
        cls.kind
        for cls in (
            Job.Created,
            Job.Started,
            Job.Progressed,
            Job.ChildrenProgressed,
            Job.Logged,
            Job.Succeeded,
            Job.Failed,
            Job.RetryScheduled,
            Job.CancelRequested,
            Job.Cancelled,
            Job.Updated,
            Job.Deleted,
        )
    )
)


def _finish(job: Job, state: JobState, when: datetime) -> None:
    job.status = state.value
    job.finished_at = when
    job.run_at = None
    _release_lease(job)


def _release_lease(job: Job) -> None:
    job.worker_id = None
    job.lease_token = None
    job.lease_expires_at = None
