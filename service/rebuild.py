"""Applying the event log to the read models from their tracking position, and checking
that the read models equal the fold of the events (`jobtrail projections` / `audit`)."""

from __future__ import annotations

import collections
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from domain.job import Job
from projections import documents, projector, sql

if TYPE_CHECKING:
    from service.store import EventStore

_CHUNK = 1000
_STATES_KEPT = 10_000


def catch_up(store: EventStore) -> int:
    """Applies every event after the tracking position; returns how many. Restart-safe:
    each chunk's rows and position commit together."""
    position = store.tracking_position()
    states: collections.OrderedDict[UUID, Job] = collections.OrderedDict()
    applied = 0
    while True:
        notifications = store.recorder.select_notifications(
            start=position, limit=_CHUNK, inclusive_of_start=False
        )
        if not notifications:
            return applied
        recorded: list[projector.Recorded] = []
        jobs: dict[UUID, Job] = {}
        for notification in notifications:
            event = store.mapper.to_domain_event(notification)
            assert isinstance(event, Job.Event | Job.Created)
            job_id = event.originator_id
            if isinstance(event, Job.Created):
                job = event.mutate(None)
                assert isinstance(job, Job)
            else:
                job = (
                    jobs.get(job_id)
                    or states.get(job_id)
                    or store.load(job_id, event.originator_version - 1)
                )
                event.mutate(job)
            jobs[job_id] = job
            recorded.append(projector.Recorded(position=notification.id, event=event))
        with store.recorder.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
            projector.apply(c, recorded, jobs)
        for job_id, job in jobs.items():
            states[job_id] = job
            states.move_to_end(job_id)
        while len(states) > _STATES_KEPT:
            states.popitem(last=False)
        applied += len(notifications)
        position = notifications[-1].id


def rebuild(store: EventStore) -> int:
    """Empties the read models and applies the whole log again. Run it with the service
    stopped: the service's writer keeps the read models current while it runs."""
    with store.recorder.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
        for statement in sql.script("clear_read_models"):
            c.execute(statement)
    return catch_up(store)


@dataclass(frozen=True, slots=True)
class Mismatch:
    table: str
    key: str
    problem: str


def verify(store: EventStore) -> list[Mismatch]:
    """Folds every job from the event store and compares the read models with the result."""
    problems: list[Mismatch] = []
    path = store.recorder.datastore.pool.db_name  # type: ignore[attr-defined]
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with db:  # one read transaction: a consistent snapshot of everything below
            db.execute("BEGIN")
            problems += _verify_events(store, db)
            problems += _verify_jobs(store, db)
    finally:
        db.close()
    return problems


def _verify_events(store: EventStore, db: sqlite3.Connection) -> list[Mismatch]:
    problems = []
    indexed = dict(db.execute("SELECT id, document FROM events"))
    last = 0
    for notification in _all_notifications(store):
        event = store.mapper.to_domain_event(notification)
        assert isinstance(event, Job.Event | Job.Created)
        expected = documents.dumps(documents.event_document(notification.id, event))
        if indexed.pop(notification.id, None) != expected:
            problems.append(Mismatch("events", str(notification.id), "differs from the log"))
        last = notification.id
    problems += [Mismatch("events", str(i), "not in the log") for i in indexed]
    (tracked,) = db.execute(sql.query("tracking_position")).fetchone()
    if tracked != last:
        problems.append(Mismatch("tracking", "jobs", f"at {tracked}, log ends at {last}"))
    return problems


def _verify_jobs(store: EventStore, db: sqlite3.Connection) -> list[Mismatch]:
    problems = []
    rows = dict(db.execute("SELECT id, document FROM jobs"))
    last_ids = dict(db.execute("SELECT job_id, MAX(id) FROM events GROUP BY job_id"))
    counts: collections.Counter[tuple[object, ...]] = collections.Counter()
    for job_id, last_event_id in last_ids.items():
        job = store.load(UUID(job_id))
        document = rows.pop(job_id, None)
        if job.deleted:
            if document is not None:
                problems.append(Mismatch("jobs", job_id, "deleted job still listed"))
            continue
        expected = documents.dumps(documents.job_document(job, last_event_id))
        if document != expected:
            problems.append(Mismatch("jobs", job_id, "differs from the fold of its events"))
        counts[
            (
                job.owner,
                job.type,
                job.status,
                documents.PRIORITY_RANK[job.priority],
                job.category or "",
                int(job.starred),
                job.result_type or "",
            )
        ] += 1
    problems += [Mismatch("jobs", job_id, "has no events") for job_id in rows]
    stored = {
        tuple(row[:-1]): row[-1] for row in db.execute("SELECT * FROM job_counts WHERE n != 0")
    }
    if stored != dict(counts):
        problems.append(Mismatch("job_counts", "*", "differ from the jobs' fold"))
    return problems


def _all_notifications(store: EventStore):  # type: ignore[no-untyped-def]
    position = 0
    while True:
        page = store.recorder.select_notifications(
            start=position, limit=_CHUNK, inclusive_of_start=False
        )
        if not page:
            return
        yield from page
        position = page[-1].id
