"""The client's logic without its I/O: each route of docs/API.md as a `Call`, which says what
to send and how to read the answer. `Client` sends calls with `httpx.Client`, `AsyncClient`
with `httpx.AsyncClient`; everything else (paths, parameters, bodies, parsing, errors) is
written once, here. Each builder's docstring is the client method's.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import httpx

from service.sdk import errors
from service.sdk.models import Claim, EventPage, Job, JobPage, LeaseState, Readiness

T = TypeVar("T")
Filter = str | Sequence[str] | None
Instant = datetime | int | str | None  # a datetime, epoch milliseconds or RFC 3339


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET: Literal[_Unset.UNSET] = _Unset.UNSET  # "leave as it is", where None means "clear"


@dataclass(frozen=True, slots=True, kw_only=True)
class Call(Generic[T]):
    """One request and the reader of its answer."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: list[tuple[str, str]] = field(default_factory=list)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None  # None: the client's

    def options(self) -> dict[str, Any]:
        """The keyword arguments of `httpx.Client.request` besides method and URL."""
        options: dict[str, Any] = {"params": self.params, "headers": self.headers}
        if self.json is not None:
            options["json"] = self.json
        if self.timeout is not None:
            options["timeout"] = self.timeout
        return options


def unreachable(base_url: httpx.URL, exc: httpx.TransportError) -> errors.TransportError:
    """httpx's connection errors as the SDK's one `TransportError`."""
    return errors.TransportError(str(base_url).rstrip("/"), str(exc) or type(exc).__name__)


# Readers.


def _checked(response: httpx.Response) -> httpx.Response:
    if not response.is_success:
        raise errors.api_error(response)
    return response


def _reader(parse: Callable[[Any], T]) -> Callable[[httpx.Response], T]:
    return lambda response: parse(_checked(response).json())


def _nothing(response: httpx.Response) -> None:
    _checked(response)


def _claim(response: httpx.Response) -> Claim | None:
    return None if response.status_code == 204 else Claim.from_json(_checked(response).json())


def _readiness(response: httpx.Response) -> Readiness:
    if response.status_code == 503:  # not ready is an answer, not an error
        return Readiness.from_json(response.json())
    return Readiness.from_json(_checked(response).json())


def _text(response: httpx.Response) -> str:
    return _checked(response).text


def _any(response: httpx.Response) -> Any:
    return _checked(response).json()


_job = _reader(Job.from_json)
_lease = _reader(LeaseState.from_json)
_job_page = _reader(JobPage.from_json)
_event_page = _reader(EventPage.from_json)


# Query parameters.


def query(**values: Any) -> list[tuple[str, str]]:
    """Query parameters of the API: None left out, a list repeated, a bool `true`/`false`,
    a datetime as epoch milliseconds."""
    params: list[tuple[str, str]] = []
    for name, value in values.items():
        items = value if isinstance(value, list | tuple) else [value]
        params.extend((name, _param(item)) for item in items if item is not None)
    return params


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return str(_epoch_ms(value))
    return str(value)


def _epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _body(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


# Jobs.


def create_job(
    type: str,
    *,
    payload: Any = None,
    name: str | None = None,
    category: str | None = None,
    priority: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    max_attempts: int | None = None,
    run_at: Instant = None,
    children: Sequence[Mapping[str, Any]] | None = None,
    idempotency_key: str | None = None,
) -> Call[Job]:
    """Creates a job (POST /api/v1/jobs) and returns it. `children` (job bodies) makes it a
    batch parent; the same `idempotency_key` with the same body returns the first job."""
    if isinstance(run_at, datetime):
        run_at = _epoch_ms(run_at)
    elif isinstance(run_at, str) and run_at.isdigit():  # epoch milliseconds, as typed
        run_at = int(run_at)
    body = _body(
        type=type,
        payload=payload,
        name=name,
        category=category,
        priority=priority,
        metadata=metadata,
        max_attempts=max_attempts,
        run_at=run_at,
        children=children,
    )
    headers = {} if idempotency_key is None else {"Idempotency-Key": idempotency_key}
    return Call(method="POST", path="/api/v1/jobs", json=body, headers=headers, read=_job)


def list_jobs(
    *,
    type: Filter = None,
    status: Filter = None,
    priority: Filter = None,
    category: Filter = None,
    owner: Filter = None,
    parent_id: Filter = None,
    finished: bool | None = None,
    starred: bool | None = None,
    result_type: Filter = None,
    created_from: Instant = None,
    created_to: Instant = None,
    sort: str | None = None,
    order: str | None = None,
    limit: int | None = None,
    offset: int | None = None,
    cursor: str | None = None,
) -> Call[JobPage]:
    """One page of jobs (GET /api/v1/jobs): filters AND together, a filter's values OR;
    page on by `cursor=page.next_cursor` with the same filters (or use `iter_jobs`)."""
    params = query(
        type=type,
        status=status,
        priority=priority,
        category=category,
        owner=owner,
        parent_id=parent_id,
        finished=finished,
        starred=starred,
        result_type=result_type,
        created_from=created_from,
        created_to=created_to,
        sort=sort,
        order=order,
        limit=limit,
        offset=offset,
        cursor=cursor,
    )
    return Call(method="GET", path="/api/v1/jobs", params=params, read=_job_page)


def get_job(job_id: str, *, as_of: int | None = None, logs: bool = False) -> Call[Job]:
    """The job (GET /api/v1/jobs/{id}); `as_of=N`: as it was after its event N; `logs=True`:
    with its newest 100 log events in `job.logs`."""
    params = query(as_of=as_of, include="logs" if logs else None)
    return Call(method="GET", path=f"/api/v1/jobs/{job_id}", params=params, read=_job)


def update_job(
    job_id: str,
    *,
    name: str | Literal[_Unset.UNSET] | None = UNSET,
    starred: bool | Literal[_Unset.UNSET] = UNSET,
    metadata: Mapping[str, Any] | Literal[_Unset.UNSET] | None = UNSET,
) -> Call[Job]:
    """Renames, stars or re-tags a job (PATCH /api/v1/jobs/{id}); `name=None` clears the name,
    `metadata` replaces the whole object."""
    changes = {"name": name, "starred": starred, "metadata": metadata}
    body = {key: value for key, value in changes.items() if value is not UNSET}
    return Call(method="PATCH", path=f"/api/v1/jobs/{job_id}", json=body, read=_job)


def cancel_job(job_id: str, *, reason: str | None = None) -> Call[Job]:
    """Cancels a job (a pending one at once; a running one is asked to stop)."""
    body = None if reason is None else {"reason": reason}
    return Call(method="POST", path=f"/api/v1/jobs/{job_id}/cancel", json=body, read=_job)


def cancel_newest() -> Call[Job]:
    """Cancels the caller's newest active job (POST /api/v1/cancel), running ones first."""
    return Call(
        method="POST", path="/api/v1/cancel", read=_reader(lambda d: Job.from_json(d["job"]))
    )


def replay_job(job_id: str) -> Call[Job]:
    """Creates a new job with the same type, payload and settings as this one."""
    return Call(method="POST", path=f"/api/v1/jobs/{job_id}/replay", read=_job)


def delete_job(job_id: str) -> Call[None]:
    """Deletes a job (a running one is cancelled first); its events stay in the store."""
    return Call(method="DELETE", path=f"/api/v1/jobs/{job_id}", read=_nothing)


# Events.


def list_job_events(job_id: str, *, after: int = 0, limit: int | None = None) -> Call[EventPage]:
    """One page of a job's events after the event id `after` (GET /api/v1/jobs/{id}/events)."""
    params = query(after=after, limit=limit)
    return Call(method="GET", path=f"/api/v1/jobs/{job_id}/events", params=params, read=_event_page)


def list_events(
    *, after: int = 0, limit: int | None = None, job_id: Filter = None, type: Filter = None
) -> Call[EventPage]:
    """One page of every event the caller may see after the event id `after`
    (GET /api/v1/events), optionally of some jobs or some event types only."""
    params = query(after=after, limit=limit, job_id=job_id, type=type)
    return Call(method="GET", path="/api/v1/events", params=params, read=_event_page)


# Browser session (the cookie every /api/v1 route accepts when a request has no header;
# this client always sends its header, which wins).


def open_session() -> Call[None]:
    """Sets the `jobtrail_token` cookie (POST /api/v1/session) in this client's cookie jar."""
    return Call(method="POST", path="/api/v1/session", read=_nothing)


def close_session() -> Call[None]:
    """Clears the `jobtrail_token` cookie (DELETE /api/v1/session)."""
    return Call(method="DELETE", path="/api/v1/session", read=_nothing)


# Workers (scope `worker`); `lease` is the claim's token.


def claim(
    types: Sequence[str],
    *,
    worker_id: str = "worker",
    lease_seconds: float = 30,
    wait_seconds: float = 0,
) -> Call[Claim | None]:
    """Claims the best due job of these types, waiting up to `wait_seconds` for one;
    None when nothing came due."""
    body = {
        "types": list(types),
        "worker_id": worker_id,
        "lease_seconds": lease_seconds,
        "wait_seconds": wait_seconds,
    }
    return Call(
        method="POST",
        path="/api/v1/workers/claim",
        json=body,
        timeout=wait_seconds + 30,
        read=_claim,
    )


def _worker_call(
    job_id: str, lease: str, action: str, body: Any, read: Callable[..., T]
) -> Call[T]:
    return Call(
        method="POST",
        path=f"/api/v1/jobs/{job_id}/{action}",
        json=body,
        headers={"Job-Lease": lease},
        read=read,
    )


def heartbeat(job_id: str, lease: str) -> Call[LeaseState]:
    """Renews the lease; the answer says whether the owner asked the job to stop."""
    return _worker_call(job_id, lease, "heartbeat", None, _lease)


def progress(job_id: str, lease: str, **fields: Any) -> Call[LeaseState]:
    """Reports progress: any of percent, stage, message, total, completed, failed."""
    return _worker_call(job_id, lease, "progress", fields, _lease)


def log(
    job_id: str, lease: str, message: str, *, level: str = "info", data: Any = None
) -> Call[LeaseState]:
    """Appends one log line (`level`: debug, info, success, warning, error)."""
    body = {"level": level, "message": message, "data": data}
    return _worker_call(job_id, lease, "logs", body, _lease)


def log_entries(job_id: str, lease: str, entries: Sequence[Mapping[str, Any]]) -> Call[LeaseState]:
    """Appends several log lines at once (each `{"level", "message", "data"}`)."""
    return _worker_call(job_id, lease, "logs", {"entries": list(entries)}, _lease)


def succeed(
    job_id: str, lease: str, result: Any = None, result_type: str | None = None
) -> Call[Job]:
    """Reports success; returns the finished job."""
    body = {"result": result, "result_type": result_type}
    return _worker_call(job_id, lease, "succeed", body, _job)


def fail(
    job_id: str,
    lease: str,
    message: str,
    *,
    code: str = "error",
    details: Any = None,
    retry: bool = True,
) -> Call[Job]:
    """Reports a failed attempt: retried when attempts are left and `retry` is true."""
    body = {"error": {"message": message, "code": code, "details": details}, "retry": retry}
    return _worker_call(job_id, lease, "fail", body, _job)


def cancelled(job_id: str, lease: str) -> Call[Job]:
    """Acknowledges a requested cancel: the job ends `cancelled`."""
    return _worker_call(job_id, lease, "cancelled", None, _job)


# Operations (no token needed).


def health() -> Call[bool]:
    """True when the server is alive (GET /healthz)."""
    return Call(method="GET", path="/healthz", read=_reader(lambda d: d.get("status") == "ok"))


def readiness() -> Call[Readiness]:
    """Whether the store is reachable, and how far the read models lag (GET /readyz)."""
    return Call(method="GET", path="/readyz", read=_readiness)


def metrics() -> Call[str]:
    """The Prometheus metrics, as text (GET /metrics)."""
    return Call(method="GET", path="/metrics", read=_text)


def openapi() -> Call[Any]:
    """The OpenAPI 3.1 document of every route (GET /openapi.json)."""
    return Call(method="GET", path="/openapi.json", read=_any)
