"""Applies recorded events to the read models, exactly once.

`apply` runs inside the transaction that records the events (so a 2xx means the read
models already show them) and again, from the log, when the read models are rebuilt.
Either way the tracking position moves in the same transaction as the rows, and
positions it has already seen are skipped.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.job import Job
from projections import documents, sql

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from projections.sql import Cursor


_ENDS_AN_ATTEMPT = frozenset({"succeeded", "failed", "retry_scheduled", "cancelled", "deleted"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Recorded:
    position: int
    event: Job.Event | Job.Created


def apply(
    cursor: Cursor, recorded: Sequence[Recorded], jobs: Mapping[UUID, Job]
) -> dict[UUID, str]:
    """Writes the rows for newly recorded events; `jobs` holds their jobs' states after them.

    Returns each changed job's rendered document. One statement per kind of row for the
    whole batch: the batch is the group commit of many requests.
    """
    seen = tracking_position(cursor)
    fresh = [r for r in recorded if r.position > seen]
    if not fresh:
        return {}
    last_position: dict[UUID, int] = {}
    created_seq: dict[UUID, int] = {}
    event_rows, key_rows, lease_rows, ended = [], [], [], set()
    for r in fresh:
        event, job = r.event, jobs[r.event.originator_id]
        event_rows.append(event_row(r.position, event, job.owner))
        last_position[job.id] = r.position
        if isinstance(event, Job.Started):
            expires = documents.epoch_ms(event.lease_expires_at)
            lease_rows.append(
                (documents.text_id(job.id), event.lease_token, event.lease_seconds, expires)
            )
        elif type(event).kind in _ENDS_AN_ATTEMPT:
            ended.add(job.id)
        if isinstance(event, Job.Created):
            created_seq[job.id] = r.position
            if event.idempotency_key is not None:
                key_rows.append(
                    (
                        job.owner,
                        event.idempotency_key,
                        event.request_hash,
                        documents.text_id(job.id),
                    )
                )
    cursor.executemany(sql.query("insert_event"), event_rows)
    if key_rows:
        cursor.executemany(sql.query("insert_idempotency_key"), key_rows)
    documents_by_job = _write_jobs(cursor, jobs, last_position, created_seq)
    if lease_rows:
        cursor.executemany(sql.query("set_lease"), lease_rows)
    # A job that is no longer running holds no lease (also when the batch holds both an
    # attempt's start and its end: replayed history, or a very short attempt).
    if ended:
        cursor.executemany(
            sql.query("drop_lease"),
            [(str(i),) for i in ended if jobs[i].status != "running" or jobs[i].deleted],
        )
    cursor.execute(sql.query("advance_tracking"), (fresh[-1].position,))
    return documents_by_job


def _write_jobs(
    cursor: Cursor,
    jobs: Mapping[UUID, Job],
    last_position: dict[UUID, int],
    created_seq: dict[UUID, int],
) -> dict[UUID, str]:
    counts: collections.Counter[tuple[Any, ...]] = collections.Counter()
    # Where each existing row sits in the indexes that a change could move it in.
    placed: dict[UUID, tuple[Any, ...]] = {}
    for old in _existing_rows(
        cursor, [documents.text_id(i) for i in last_position if i not in created_seq]
    ):
        counts[tuple(old[1:8])] -= 1
        created_seq[UUID(old[0])] = old[8]
        placed[UUID(old[0])] = (old[3], old[4], old[9])
    upserts, touches, deletes, documents_by_job = [], [], [], {}
    for job_id, position in last_position.items():
        job = jobs[job_id]
        if job.deleted:
            deletes.append((documents.text_id(job_id),))
            documents_by_job[job_id] = documents.dumps(documents.job_document(job, position))
            continue
        assert job_id in created_seq, f"the jobs row of {job_id} is missing; run a rebuild"
        counts[count_key(job)] += 1
        row = job_row(job, position, created_seq[job_id])
        if placed.get(job_id) == (row[4], row[5], row[14]):  # same status, priority, finish
            touches.append(_touch(row))
        else:
            upserts.append(row)
        documents_by_job[job_id] = row[-1]
    cursor.executemany(sql.query("upsert_job"), upserts)
    cursor.executemany(sql.query("touch_job"), touches)
    cursor.executemany(sql.query("delete_job"), deletes)
    cursor.executemany(
        sql.query("add_to_count"), [(*key, n) for key, n in counts.items() if n != 0]
    )
    return documents_by_job


def _existing_rows(cursor: Cursor, job_ids: list[str]) -> list[Any]:
    rows: list[Any] = []
    for start in range(0, len(job_ids), 500):
        chunk = job_ids[start : start + 500]
        cursor.execute(sql.query("job_count_keys").format(ids=",".join("?" * len(chunk))), chunk)
        rows.extend(cursor.fetchall())
    return rows


def event_row(position: int, event: Job.Event | Job.Created, owner: str) -> tuple[Any, ...]:
    """The `events` row of an event, column by column."""
    rendered = documents.event_document(position, event)
    return (position, rendered["job_id"], event.originator_version, owner,
            type(event).kind, documents.dumps(rendered))  # fmt: skip


def job_row(job: Job, last_event_id: int, created_seq: int) -> tuple[Any, ...]:
    """The `jobs` row of a live job, column by column (as `SELECT *` returns them)."""
    return (
        documents.text_id(job.id),
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


def _touch(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The `touch_job` parameters of a `jobs` row: the columns no list or claim index holds
    but updated_at, then the id."""
    (id_, _, _, _, _, _, category, _, finished, cancel_requested, starred, result_type,
     _, updated_at, _, run_at, version, last_event_id, document) = row  # fmt: skip
    return (category, finished, cancel_requested, starred, result_type, updated_at, run_at,
            version, last_event_id, document, id_)  # fmt: skip


def count_key(job: Job) -> tuple[Any, ...]:
    """The job's group in `job_counts`."""
    return (job.owner, job.type, job.status, documents.PRIORITY_RANK[job.priority],
            job.category or "", int(job.starred), job.result_type or "")  # fmt: skip


def tracking_position(cursor: Cursor) -> int:
    """The id of the last event the read models have applied."""
    cursor.execute(sql.query("tracking_position"))
    return int(cursor.fetchone()[0])


def rewrite_tracking(cursor: Cursor) -> None:
    """Writes the tracking row unchanged: a write that changes nothing, which commits only
    when the database takes writes (the store's probe, service/store/writer.py)."""
    cursor.execute(sql.query("advance_tracking"), (0,))


def clear(cursor: Cursor) -> None:
    """Empties every read model and rewinds the tracking position to 0 (before a rebuild)."""
    for statement in sql.script("clear_read_models"):
        cursor.execute(statement)
