"""The worker protocol's commands (API.md, "Workers"). They run in the writer thread.

A claim is the job's `started` event, appended with optimistic concurrency on its version:
the writer runs one command at a time and the save checks the version, so two claimers never
both win, in one process or several (the loser's conflict makes the writer retry it alone,
and the retry finds the job taken).
"""

from __future__ import annotations

import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from domain import errors as domain_errors
from domain import retry
from domain.states import JobState
from projections import claims, documents
from service import errors
from service.workers import leases

if TYPE_CHECKING:
    from collections.abc import Callable

    from domain.job import Job
    from service.settings import Settings
    from service.store.unit_of_work import UnitOfWork

# Stateless (OS entropy): the global `random` state is not ours to move.
_JITTER = random.SystemRandom()

_PAGE = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class Claimed:
    job_id: uuid.UUID
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseState:
    """What a heartbeat, progress or log call answers."""

    job_id: uuid.UUID
    cancel_requested: bool
    lease_expires_at: datetime | None


def retry_policy(settings: Settings) -> retry.RetryPolicy:
    """The configured backoff before the next attempt: after a failure, or an expired lease."""
    return retry.RetryPolicy(
        base_seconds=settings.retry_base_seconds, cap_seconds=settings.retry_cap_seconds
    )


def claim(
    types: tuple[str, ...], worker_id: str, lease_seconds: float
) -> Callable[[UnitOfWork], Claimed | None]:
    """Starts the best due pending job of the given types; None when none is due."""

    def command(uow: UnitOfWork) -> Claimed | None:
        now_ms = documents.epoch_ms(uow.now)
        limit = _PAGE
        while True:
            candidates, more = [], False
            for job_type in types:
                found = uow.read(claims.candidates, job_type, now_ms, limit)
                candidates.extend(found)
                more = more or len(found) == limit
            candidates.sort(key=lambda candidate: candidate.order)
            for candidate in candidates:
                job = uow.get(candidate.job_id)
                if _claimable(job, uow.now):
                    return _start(uow, job, worker_id, lease_seconds)
            if not more:
                return None
            # Every candidate was claimed by an earlier command of this group: look further.
            limit *= 4

    return command


def _claimable(job: Job, now: datetime) -> bool:
    if job.deleted or job.state is not JobState.PENDING:
        return False
    return job.run_at is None or job.run_at <= now


def _start(uow: UnitOfWork, job: Job, worker_id: str, lease_seconds: float) -> Claimed:
    token = secrets.token_urlsafe(24)
    expires = uow.now + timedelta(seconds=lease_seconds)
    job.start(worker_id=worker_id, lease_token=token, lease_expires_at=expires, now=uow.now)
    uow.leases[job.id] = (token, lease_seconds, documents.epoch_ms(expires))
    return Claimed(job_id=job.id, token=token, expires_at=expires)


def _leased(uow: UnitOfWork, job_id: uuid.UUID, token: str) -> Job:
    """The job, if `token` is its current, unexpired lease; else LeaseLost (409)."""
    try:
        job = uow.get(job_id)
    except errors.JobNotFound:
        raise errors.LeaseLost(job_id) from None
    try:
        job.check_lease(token, uow.now, leases.expiry_of(uow, job_id, token))
    except domain_errors.DomainError:
        raise errors.LeaseLost(job_id) from None
    return job


def _renewed(uow: UnitOfWork, job: Job, token: str) -> LeaseState:
    lease = leases.current(uow, job.id)
    seconds = lease[1] if lease is not None and lease[1] > 0 else 30.0
    expires = leases.renew(uow, job.id, token, seconds)
    return LeaseState(
        job_id=job.id, cancel_requested=job.cancel_requested, lease_expires_at=expires
    )


def heartbeat(job_id: uuid.UUID, token: str) -> Callable[[UnitOfWork], LeaseState]:
    def command(uow: UnitOfWork) -> LeaseState:
        return _renewed(uow, _leased(uow, job_id, token), token)

    return command


def progress(
    job_id: uuid.UUID, token: str, fields: dict[str, Any]
) -> Callable[[UnitOfWork], LeaseState]:
    def command(uow: UnitOfWork) -> LeaseState:
        job = _leased(uow, job_id, token)
        job.report_progress(fields, now=uow.now)
        return _renewed(uow, job, token)

    return command


def logs(
    job_id: uuid.UUID, token: str, entries: list[tuple[str, str, Any]]
) -> Callable[[UnitOfWork], LeaseState]:
    def command(uow: UnitOfWork) -> LeaseState:
        job = _leased(uow, job_id, token)
        for level, message, data in entries:
            job.log(level=level, message=message, data=data, now=uow.now)
        return _renewed(uow, job, token)

    return command


def succeed(
    job_id: uuid.UUID, token: str, result: Any, result_type: str | None
) -> Callable[[UnitOfWork], uuid.UUID]:
    def command(uow: UnitOfWork) -> uuid.UUID:
        job = _leased(uow, job_id, token)
        job.succeed(result=result, result_type=result_type, now=uow.now)
        return job.id

    return command


def fail(
    job_id: uuid.UUID,
    token: str,
    error: dict[str, Any],
    retry_allowed: bool,
    policy: retry.RetryPolicy,
) -> Callable[[UnitOfWork], uuid.UUID]:
    def command(uow: UnitOfWork) -> uuid.UUID:
        job = _leased(uow, job_id, token)
        job.fail(
            error=error,
            retry_allowed=retry_allowed,
            now=uow.now,
            policy=policy,
            jitter=_JITTER.random(),
        )
        return job.id

    return command


def acknowledge_cancel(job_id: uuid.UUID, token: str) -> Callable[[UnitOfWork], uuid.UUID]:
    def command(uow: UnitOfWork) -> uuid.UUID:
        job = _leased(uow, job_id, token)
        job.acknowledge_cancel(now=uow.now)
        return job.id

    return command
