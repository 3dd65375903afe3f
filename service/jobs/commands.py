"""The application's commands: each loads jobs in a unit of work, applies a domain command,
and returns what the route needs. They run in the writer thread (service/store/writer.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from domain.job import Job
from domain.states import JobState
from projections import jobs_view
from service import errors
from service.jobs import batches

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from uuid import UUID

    from service.principal import Principal
    from service.store.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSpec:
    """A validated job body (POST /api/v1/jobs)."""

    type: str
    payload: Any = None
    name: str | None = None
    category: str | None = None
    priority: str = "normal"
    metadata: dict[str, Any] | None = None
    max_attempts: int = 1
    run_at: datetime | None = None
    # A batch parent's children (API.md: 1 to 1000 job bodies, created with it).
    children: tuple[JobSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class Created:
    job_id: UUID
    replayed: bool


def create_job(
    spec: JobSpec, *, owner: str, idempotency_key: str | None, request_hash: str | None
) -> Callable[[UnitOfWork], Created]:
    def command(uow: UnitOfWork) -> Created:
        if idempotency_key is not None:
            assert request_hash is not None
            earlier = _find_key(uow, owner, idempotency_key)
            if earlier is not None:
                return _replay_key(uow, idempotency_key, earlier, request_hash)
        job = _new_job(uow, spec, owner=owner, key=idempotency_key, request_hash=request_hash)
        for child in spec.children:  # all in this unit of work: all or nothing
            _new_job(uow, child, owner=owner, parent_id=str(job.id))
        if idempotency_key is not None:
            assert request_hash is not None
            uow.keys[owner, idempotency_key] = (request_hash, job.id)
        return Created(job.id, replayed=False)

    return command


def replay_job(job_id: UUID, actor: Principal) -> Callable[[UnitOfWork], Created]:
    def command(uow: UnitOfWork) -> Created:
        original = visible_job(uow, job_id, actor)
        # A batch is replayed with its (live) children, each as it was created.
        children = tuple(_same_spec(uow.get(i)) for i in batches.children_ids(uow, original))
        spec = _same_spec(original, children)
        # The replay belongs to the original's owner, also when an admin asks for it.
        job = _new_job(uow, spec, owner=original.owner, replayed_from=str(original.id))
        for child in spec.children:
            _new_job(uow, child, owner=original.owner, parent_id=str(job.id))
        return Created(job.id, replayed=False)

    return command


def update_job(
    job_id: UUID, actor: Principal, changes: dict[str, Any]
) -> Callable[[UnitOfWork], UUID]:
    def command(uow: UnitOfWork) -> UUID:
        job = visible_job(uow, job_id, actor)
        job.update(changes, now=uow.now)
        return job.id

    return command


def cancel_job(job_id: UUID, actor: Principal, reason: str | None) -> Callable[[UnitOfWork], UUID]:
    def command(uow: UnitOfWork) -> UUID:
        job = visible_job(uow, job_id, actor)
        job.cancel(reason=reason, now=uow.now)
        batches.cancel_children(uow, job, reason)
        return job.id

    return command


def cancel_newest(actor: Principal) -> Callable[[UnitOfWork], UUID]:
    """Cancels the caller's newest active job, running ones before pending ones."""

    def command(uow: UnitOfWork) -> UUID:
        for state in (JobState.RUNNING, JobState.PENDING):
            found = uow.read(jobs_view.newest_active_job, actor.sub, state.value)
            if found is not None:
                job = uow.get(found)
                job.cancel(reason=None, now=uow.now)
                batches.cancel_children(uow, job, None)
                return job.id
        raise errors.NoActiveJob(actor.sub)

    return command


def delete_job(job_id: UUID, actor: Principal) -> Callable[[UnitOfWork], UUID]:
    def command(uow: UnitOfWork) -> UUID:
        job = visible_job(uow, job_id, actor)
        job.delete(now=uow.now)
        batches.cancel_children(uow, job, "batch deleted")
        return job.id

    return command


def _same_spec(job: Job, children: tuple[JobSpec, ...] = ()) -> JobSpec:
    return JobSpec(
        type=job.type,
        payload=job.payload,
        name=job.name,
        category=job.category,
        priority=job.priority,
        metadata=job.metadata,
        max_attempts=job.max_attempts,
        children=children,
    )


def visible_job(uow: UnitOfWork, job_id: UUID, actor: Principal) -> Job:
    """The job, if it exists and the actor may see it; else NotFound, whichever the reason."""
    job = uow.get(job_id)
    if job.deleted or (actor.owner_filter is not None and job.owner != actor.owner_filter):
        raise errors.JobNotFound(job_id)
    return job


def _new_job(
    uow: UnitOfWork,
    spec: JobSpec,
    *,
    owner: str,
    key: str | None = None,
    request_hash: str | None = None,
    replayed_from: str | None = None,
    parent_id: str | None = None,
) -> Job:
    job = Job.create(
        job_id=uow.new_job_id(),
        now=uow.now,
        type=spec.type,
        owner=owner,
        payload=spec.payload,
        name=spec.name,
        category=spec.category,
        priority=spec.priority,
        metadata=spec.metadata,
        max_attempts=spec.max_attempts,
        run_at=spec.run_at,
        replayed_from=replayed_from,
        idempotency_key=key,
        request_hash=request_hash,
        parent_id=parent_id,
        batch_size=len(spec.children) or None,
    )
    uow.add(job)
    return job


def _find_key(uow: UnitOfWork, owner: str, key: str) -> tuple[str, UUID] | None:
    claimed = uow.keys.get((owner, key))
    if claimed is not None:
        return claimed
    return uow.read(jobs_view.idempotency_key, owner, key)


def _replay_key(uow: UnitOfWork, key: str, earlier: tuple[str, UUID], request_hash: str) -> Created:
    earlier_hash, job_id = earlier
    if earlier_hash != request_hash:
        raise errors.IdempotencyKeyReused(key)
    if uow.get(job_id).deleted:
        raise errors.IdempotencyKeyOfDeletedJob(key, job_id)
    return Created(job_id, replayed=True)
