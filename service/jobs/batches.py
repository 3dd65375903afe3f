"""Batches: a parent and its children, created together; the parent follows its children.

The process-manager idiom (a policy that reacts to a child's events by commanding its parent)
runs as a writer policy inside the unit of work of the command that changed the child. The
parent's change is saved in the same transaction as the child's event, so it happens exactly
once by construction: there is no second log to track, no window in which a crash can separate
the two, and nothing to redo after a restart.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from projections import jobs_view

if TYPE_CHECKING:
    from domain.job import Job
    from service.store.unit_of_work import UnitOfWork


def follow(uow: UnitOfWork) -> None:
    """Writer policy: each child whose status the command changed updates its parent."""
    for job_id, before in list(uow.statuses_before.items()):
        job = uow.jobs[job_id]
        if job.parent_id is None:
            continue
        after = job.batch_status
        if after != before:
            parent = uow.get(uuid.UUID(job.parent_id))
            parent.record_child(old=before, new=after, now=uow.now)


def cancel_children(uow: UnitOfWork, parent: Job, reason: str | None) -> None:
    """Cancels every unfinished child of a batch parent (running ones are asked to stop)."""
    if parent.children is None:
        return
    for child_id in uow.read(jobs_view.children, parent.id, unfinished=True):
        child = uow.get(child_id)
        if not child.deleted and not child.is_finished:
            child.cancel(reason=reason or "batch cancelled", now=uow.now)


def children_ids(uow: UnitOfWork, parent: Job) -> list[uuid.UUID]:
    """The live children of a batch parent, in creation order (none for other jobs)."""
    if parent.children is None:
        return []
    return uow.read(jobs_view.children, parent.id)
