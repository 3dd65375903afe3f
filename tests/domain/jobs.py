"""Jobs built through their own commands, for the domain tests. No I/O, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from domain import retry
from domain.job import Job

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LEASE_ENDS = NOW + timedelta(seconds=30)
POLICY = retry.RetryPolicy(base_seconds=10.0, cap_seconds=300.0)
ERROR = {"message": "Render crashed.", "code": "render_error", "details": {"frame": 12}}
PROGRESS_FIELDS = ("percent", "stage", "message", "total", "completed", "failed")
EVENT_TYPES = frozenset(
    {
        "created",
        "started",
        "progress",
        "log",
        "succeeded",
        "failed",
        "retry_scheduled",
        "cancel_requested",
        "cancelled",
        "updated",
        "deleted",
    }
)
SITUATIONS = (
    "pending",
    "running",
    "cancel_requested",
    "retry_scheduled",
    "succeeded",
    "failed",
    "cancelled",
    "deleted",
)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def new(**fields: Any) -> Job:
    return Job.create(
        job_id=uuid4(), now=NOW, **({"type": "video.render", "owner": "alice"} | fields)
    )


def start(job: Job, *, now: datetime = NOW, token: str = "lease-1") -> None:
    job.start(
        worker_id="host-1", lease_token=token, lease_expires_at=now + timedelta(seconds=30), now=now
    )


def fail(job: Job, *, retry_allowed: bool = True, now: datetime = NOW) -> None:
    job.fail(error=ERROR, retry_allowed=retry_allowed, now=now, policy=POLICY, jitter=0.5)


def running(**fields: Any) -> Job:
    job = new(**fields)
    start(job)
    return job


def in_situation(situation: str) -> Job:
    """A job with attempts left, brought to `situation` (one of SITUATIONS) at NOW."""
    job = new(max_attempts=3)
    if situation == "pending":
        return job
    if situation == "deleted":
        job.delete(now=NOW)
        return job
    start(job)
    if situation == "succeeded":
        job.succeed(result=None, result_type=None, now=NOW)
    elif situation == "failed":
        fail(job, retry_allowed=False)
    elif situation == "cancelled":
        job.cancel(reason=None, now=NOW)
        job.acknowledge_cancel(now=NOW)
    elif situation == "cancel_requested":
        job.cancel(reason=None, now=NOW)
    elif situation == "retry_scheduled":
        fail(job)
    else:
        assert situation == "running", situation
    return job


def kinds(job: Job) -> list[str]:
    """The API event types of the job's pending events, in order."""
    found = []
    for event in job.pending_events:
        assert isinstance(event, Job.Event | Job.Created)
        found.append(event.kind)
    return found


def event(job: Job, index: int) -> Any:
    return job.pending_events[index]


def state_of(job: Job) -> dict[str, Any]:
    """Everything the job's events folded to; pending events are not state."""
    return {name: value for name, value in vars(job).items() if name != "_pending_events"}


def lease_of(job: Job) -> tuple[str | None, str | None, datetime | None]:
    return (job.worker_id, job.lease_token, job.lease_expires_at)
