"""The API's objects as frozen dataclasses, each read from its JSON by `from_json`.

Every object keeps the JSON it was read from in `raw` (left out of `repr` and equality): a
program that wants the API's own JSON, such as `jobtrail ... --json`, prints that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
JSON = dict[str, Any]


def timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp of the API (`"2026-11-23T17:43:41.123Z"`) as an aware datetime."""
    return None if value is None else datetime.fromisoformat(str(value))


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """A job's progress in its current attempt: every field may be None."""

    percent: float | None = None
    stage: str | None = None
    message: str | None = None
    total: int | None = None
    completed: int | None = None
    failed: int | None = None

    @classmethod
    def from_json(cls, data: JSON | None) -> Progress:
        data = data or {}
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True, kw_only=True)
class Children:
    """A batch parent's children, counted by status."""

    total: int
    pending: int
    running: int
    succeeded: int
    failed: int
    cancelled: int

    @classmethod
    def from_json(cls, data: JSON | None) -> Children | None:
        if data is None:
            return None
        return cls(**{name: int(data.get(name) or 0) for name in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True, kw_only=True)
class JobFailure:
    """A failed attempt's error: `message`, `code`, `details`."""

    message: str
    code: str
    details: Any = None

    @classmethod
    def from_json(cls, data: JSON | None) -> JobFailure | None:
        if data is None:
            return None
        return cls(message=data["message"], code=data["code"], details=data.get("details"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One event of a job's history; `id` is the global event cursor, `seq` its number in
    the job's own stream."""

    id: int
    job_id: str
    seq: int
    type: str
    timestamp: datetime | None
    level: str | None
    message: str | None
    data: Any
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JSON) -> Event:
        return cls(
            id=int(data["id"]),
            job_id=data["job_id"],
            seq=int(data["seq"]),
            type=data["type"],
            timestamp=timestamp(data.get("timestamp")),
            level=data.get("level"),
            message=data.get("message"),
            data=data.get("data"),
            raw=data,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """A job as the API shows it (docs/API.md, "The Job object")."""

    id: str
    type: str
    name: str | None
    category: str | None
    status: str
    priority: str
    owner: str
    parent_id: str | None
    replayed_from: str | None
    payload: Any
    metadata: JSON
    starred: bool
    progress: Progress
    children: Children | None
    cancel_requested: bool
    result: Any
    result_type: str | None
    error: JobFailure | None
    attempt: int
    max_attempts: int
    run_at: datetime | None
    version: int
    last_event_id: int
    created_at: datetime | None
    updated_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    logs: tuple[Event, ...] | None = None  # with `get_job(..., logs=True)` only
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        """True once the job is succeeded, failed or cancelled."""
        return self.status in TERMINAL

    @classmethod
    def from_json(cls, data: JSON) -> Job:
        logs = data.get("logs")
        return cls(
            id=data["id"],
            type=data["type"],
            name=data.get("name"),
            category=data.get("category"),
            status=data["status"],
            priority=data["priority"],
            owner=data["owner"],
            parent_id=data.get("parent_id"),
            replayed_from=data.get("replayed_from"),
            payload=data.get("payload"),
            metadata=data.get("metadata") or {},
            starred=bool(data.get("starred")),
            progress=Progress.from_json(data.get("progress")),
            children=Children.from_json(data.get("children")),
            cancel_requested=bool(data.get("cancel_requested")),
            result=data.get("result"),
            result_type=data.get("result_type"),
            error=JobFailure.from_json(data.get("error")),
            attempt=int(data.get("attempt") or 0),
            max_attempts=int(data.get("max_attempts") or 1),
            run_at=timestamp(data.get("run_at")),
            version=int(data["version"]),
            last_event_id=int(data["last_event_id"]),
            created_at=timestamp(data.get("created_at")),
            updated_at=timestamp(data.get("updated_at")),
            started_at=timestamp(data.get("started_at")),
            finished_at=timestamp(data.get("finished_at")),
            logs=None if logs is None else tuple(Event.from_json(e) for e in logs),
            raw=data,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobPage:
    """A page of `list_jobs`; `next_cursor` is None on the last page."""

    items: tuple[Job, ...]
    total: int
    offset: int | None
    limit: int
    next_cursor: str | None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JSON) -> JobPage:
        return cls(
            items=tuple(Job.from_json(item) for item in data["items"]),
            total=int(data["total"]),
            offset=data.get("offset"),
            limit=int(data["limit"]),
            next_cursor=data.get("next_cursor"),
            raw=data,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class EventPage:
    """A page of events after a cursor. For one job's events, also `job_status` and
    `finished` (no event will ever follow: the job is over and this page holds its last)."""

    items: tuple[Event, ...]
    next_after: int
    has_more: bool
    job_status: str | None = None
    finished: bool | None = None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JSON) -> EventPage:
        return cls(
            items=tuple(Event.from_json(item) for item in data["items"]),
            next_after=int(data["next_after"]),
            has_more=bool(data["has_more"]),
            job_status=data.get("job_status"),
            finished=data.get("finished"),
            raw=data,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """A claimed job and its lease (`token` goes in the `Job-Lease` header)."""

    job: Job
    token: str
    expires_at: datetime | None

    @property
    def job_id(self) -> str:
        return self.job.id

    @classmethod
    def from_json(cls, data: JSON) -> Claim:
        lease = data["lease"]
        return cls(
            job=Job.from_json(data["job"]),
            token=lease["token"],
            expires_at=timestamp(lease.get("expires_at")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseState:
    """What a heartbeat, progress or log call answers."""

    cancel_requested: bool
    lease_expires_at: datetime | None

    @classmethod
    def from_json(cls, data: JSON) -> LeaseState:
        return cls(
            cancel_requested=bool(data["cancel_requested"]),
            lease_expires_at=timestamp(data.get("lease_expires_at")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Readiness:
    """`/readyz`: `ready` when the store is reachable; how far the read models lag."""

    ready: bool
    projection_lag: int | None
    last_event_id: int | None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JSON) -> Readiness:
        return cls(
            ready=data.get("status") == "ok",
            projection_lag=data.get("projection_lag"),
            last_event_id=data.get("last_event_id"),
            raw=data,
        )
