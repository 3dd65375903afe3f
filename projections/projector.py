"""Applies recorded events to the read models, exactly once.

`apply` runs inside the transaction that records the events (so a 2xx means the read
models already show them) and again, from the log, when the read models are rebuilt.
Either way the tracking position moves in the same transaction as the rows, and
positions it has already seen are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from domain.job import Job
from projections import documents, sql

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from uuid import UUID


class Cursor(Protocol):
    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...

    def fetchone(self) -> Any: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Recorded:
    position: int
    event: Job.Event | Job.Created


def apply(
    cursor: Cursor, recorded: Sequence[Recorded], jobs: Mapping[UUID, Job]
) -> dict[UUID, str]:
    """Writes the rows for newly recorded events; `jobs` holds their jobs' states after them.

    Returns each changed job's rendered document.
    """
    cursor.execute(sql.query("tracking_position"))
    seen = cursor.fetchone()[0]
    fresh = [r for r in recorded if r.position > seen]
    if not fresh:
        return {}
    last_position: dict[UUID, int] = {}
    created_at: dict[UUID, int] = {}
    for r in fresh:
        job = jobs[r.event.originator_id]
        _insert_event(cursor, r, job.owner)
        last_position[job.id] = r.position
        if isinstance(r.event, Job.Created):
            created_at[job.id] = r.position
    documents_by_job = {
        job_id: _write_job(cursor, jobs[job_id], position, created_at.get(job_id))
        for job_id, position in last_position.items()
    }
    cursor.execute(sql.query("advance_tracking"), (fresh[-1].position,))
    return documents_by_job


def event_row(position: int, event: Job.Event | Job.Created, owner: str) -> tuple[Any, ...]:
    """The `events` row of an event, column by column."""
    document = documents.dumps(documents.event_document(position, event))
    return (position, str(event.originator_id), event.originator_version, owner,
            type(event).kind, document)  # fmt: skip


def job_row(job: Job, last_event_id: int, created_seq: int) -> tuple[Any, ...]:
    """The `jobs` row of a live job, column by column (as `SELECT *` returns them)."""
    return (
        str(job.id),
        created_seq,
        job.owner,
        job.type,
        job.status,
        documents.PRIORITY_RANK[job.priority],
        job.category,
        job.parent_id,
        int(job.is_finished),
        int(job.cancel_requested),
        int(job.starred),
        job.result_type,
        documents.epoch_ms(job.created_on),
        documents.epoch_ms(job.modified_on),
        documents.epoch_ms(job.finished_at) if job.finished_at else 0,
        documents.epoch_ms(job.run_at) if job.run_at else None,
        job.version,
        last_event_id,
        documents.dumps(documents.job_document(job, last_event_id)),
    )


def count_key(job: Job) -> tuple[Any, ...]:
    """The job's group in `job_counts`."""
    return (job.owner, job.type, job.status, documents.PRIORITY_RANK[job.priority],
            job.category or "", int(job.starred), job.result_type or "")  # fmt: skip


def _insert_event(cursor: Cursor, r: Recorded, owner: str) -> None:
    event = r.event
    cursor.execute(sql.query("insert_event"), event_row(r.position, event, owner))
    if isinstance(event, Job.Created) and event.idempotency_key is not None:
        cursor.execute(
            sql.query("insert_idempotency_key"),
            (owner, event.idempotency_key, event.request_hash, str(event.originator_id)),
        )


def _write_job(cursor: Cursor, job: Job, last_event_id: int, created_seq: int | None) -> str:
    job_id = str(job.id)
    if created_seq is None:  # not created in this batch: it has a row to update
        cursor.execute(sql.query("job_count_key"), (job_id,))
        old = cursor.fetchone()
        assert old is not None, f"the jobs row of {job_id} is missing; run a rebuild"
        _add_to_count(cursor, tuple(old[:7]), -1)
        created_seq = old[7]
    if job.deleted:
        cursor.execute(sql.query("delete_job"), (job_id,))
        return documents.dumps(documents.job_document(job, last_event_id))
    _add_to_count(cursor, count_key(job), 1)
    row = job_row(job, last_event_id, created_seq)
    cursor.execute(sql.query("upsert_job"), row)
    return str(row[-1])


def _add_to_count(cursor: Cursor, key: tuple[Any, ...], n: int) -> None:
    cursor.execute(sql.query("add_to_count"), (*key, n))
