"""Applying the event log to the read models from their tracking position, and checking
that the read models equal the fold of the events (`jobtrail projections` / `audit`)."""

from __future__ import annotations

import collections
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.job import Job
from projections import projector, sql

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from eventsourcing.persistence import Notification

    from service.store.sqlite import EventStore

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
    """Folds every job from the event store and compares every read-model row, column by
    column, with what the fold gives: tampering with any of them is reported."""
    path = store.recorder.datastore.pool.db_name  # type: ignore[attr-defined]
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with db:  # one read transaction: a consistent snapshot of everything below
            db.execute("BEGIN")
            log = _fold_log(store)
            jobs = _job_rows(store, log)
            tracking = {("jobs",): ("jobs", log.last)}
            return [
                *_compare("events", log.events, db.execute("SELECT * FROM events")),
                *_compare("jobs", jobs, db.execute("SELECT * FROM jobs")),
                *_compare("idempotency_keys", log.keys, db.execute(_KEYS)),
                *_compare("job_counts", log.counts, db.execute(_COUNTS)),
                *_compare("tracking", tracking, db.execute(_TRACKING)),
            ]
    finally:
        db.close()


_KEYS = "SELECT * FROM idempotency_keys"
_COUNTS = "SELECT * FROM job_counts WHERE n != 0"
_TRACKING = "SELECT projection, position FROM tracking"


Rows = dict[tuple[Any, ...], tuple[Any, ...]]  # a table's rows by their key columns


@dataclass(slots=True)
class _Log:
    """What the read models must hold: rows read off the event log."""

    events: Rows = field(default_factory=dict)
    keys: Rows = field(default_factory=dict)
    counts: Rows = field(default_factory=dict)
    created_seq: dict[str, int] = field(default_factory=dict)
    last_position: dict[str, int] = field(default_factory=dict)
    last: int = 0


def _fold_log(store: EventStore) -> _Log:
    log = _Log()
    owners: dict[str, str] = {}
    for notification in _all_notifications(store):
        event = store.mapper.to_domain_event(notification)
        assert isinstance(event, Job.Event | Job.Created)
        job_id = str(event.originator_id)
        if isinstance(event, Job.Created):
            owners[job_id] = event.owner
            log.created_seq[job_id] = notification.id
            if event.idempotency_key is not None:
                key = (event.owner, event.idempotency_key)
                log.keys[key] = (*key, event.request_hash, job_id)
        row = projector.event_row(notification.id, event, owners[job_id])
        log.events[row[:1]] = row
        log.last_position[job_id] = notification.id
        log.last = notification.id
    return log


def _job_rows(store: EventStore, log: _Log) -> Rows:
    rows: Rows = {}
    counts: collections.Counter[tuple[Any, ...]] = collections.Counter()
    for job_id, last_position in log.last_position.items():
        job = store.load(UUID(job_id))
        if not job.deleted:
            rows[(job_id,)] = projector.job_row(job, last_position, log.created_seq[job_id])
            counts[projector.count_key(job)] += 1
    log.counts = {key: (*key, n) for key, n in counts.items()}  # keyed by all but `n`
    return rows


def _compare(table: str, expected: Rows, actual: Iterable[tuple[Any, ...]]) -> list[Mismatch]:
    width = len(next(iter(expected))) if expected else 1
    problems = []
    seen = set()
    for row in actual:
        key = tuple(row[:width])
        seen.add(key)
        want = expected.get(key)
        if want is None:
            problems.append(Mismatch(table, _name(key), "not in the fold of the events"))
        elif want != tuple(row):
            columns = [str(i) for i, (w, a) in enumerate(zip(want, row, strict=True)) if w != a]
            problems.append(Mismatch(table, _name(key), f"differs in columns {', '.join(columns)}"))
    problems += [Mismatch(table, _name(key), "missing") for key in expected.keys() - seen]
    return problems


def _name(key: tuple[Any, ...]) -> str:
    return " ".join(map(str, key))


def _all_notifications(store: EventStore) -> Iterator[Notification]:
    position = 0
    while True:
        page = store.recorder.select_notifications(
            start=position, limit=_CHUNK, inclusive_of_start=False
        )
        if not page:
            return
        yield from page
        position = page[-1].id
