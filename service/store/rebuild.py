"""Applying the event log to the read models from their tracking position, and checking
that the read models equal the fold of the events (`jobtrail projections` / `audit`)."""

from __future__ import annotations

import collections
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.job import Job
from projections import audit, projector
from service.store import export

if TYPE_CHECKING:
    from collections.abc import Iterable

    from service.store.base import EventStore

_CHUNK = 1000
_STATES_KEPT = 10_000


def catch_up(store: EventStore) -> int:
    """Applies every event after the tracking position; returns how many. Restart-safe:
    each chunk's rows and position commit together."""
    position = store.tracking_position()
    states: collections.OrderedDict[UUID, Job] = collections.OrderedDict()
    applied = 0
    while True:
        recorded = store.recorded_after(position, _CHUNK)
        if not recorded:
            return applied
        jobs: dict[UUID, Job] = {}
        for r in recorded:
            event = r.event
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
        store.write(functools.partial(projector.apply, recorded=recorded, jobs=jobs))
        for job_id, job in jobs.items():
            states[job_id] = job
            states.move_to_end(job_id)
        while len(states) > _STATES_KEPT:
            states.popitem(last=False)
        applied += len(recorded)
        position = recorded[-1].position


def rebuild(store: EventStore) -> int:
    """Empties the read models and applies the whole log again. Run it with the service
    stopped: the service's writer keeps the read models current while it runs."""
    store.write(projector.clear)
    return catch_up(store)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One difference: the table (`events` also for the log's own order), the row's key
    (with the job id and version where the row has them), what is wrong."""

    table: str
    key: str
    problem: str


def verify(store: EventStore) -> list[Mismatch]:
    """Folds every job from its events (in one pass over the log: no snapshot is trusted)
    and compares every read-model row, column by column, with what the fold gives:
    tampering with any of them is reported, and so is a log out of order."""
    log = _fold_log(store)
    jobs = _job_rows(log)
    expected = {
        "events": log.events,
        "jobs": jobs,
        "idempotency_keys": log.keys,
        "job_counts": log.counts,
        "tracking": {("jobs",): ("jobs", log.last)},
    }
    # Every table from one read transaction: a consistent snapshot of the read models.
    actual = store.read(lambda c: {table: audit.rows(c, table) for table in audit.TABLES})
    return log.problems + [
        problem
        for table in audit.TABLES
        for problem in _compare(table, expected[table], actual[table])
    ]


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
    versions: dict[str, int] = field(default_factory=dict)
    jobs: dict[str, Job | None] = field(default_factory=dict)  # None: its events do not fold
    problems: list[Mismatch] = field(default_factory=list)  # of the log itself, or a fold

    def check_order(self, position: int, job_id: str, version: int) -> None:
        """Event ids strictly increase; each job's versions go 1, 2, 3... without a gap."""
        key = f"{position} (job {job_id} version {version})"
        if position <= self.last:
            self.problems.append(Mismatch("events", key, f"id not after the previous {self.last}"))
        previous = self.versions.get(job_id, 0)
        if version != previous + 1:
            problem = f"version follows version {previous}: versions must be contiguous"
            self.problems.append(Mismatch("events", key, problem))
        self.versions[job_id] = version


def _fold_log(store: EventStore) -> _Log:
    log = _Log()
    owners: dict[str, str] = {}
    for recorded in export.recorded(store):
        event, position = recorded.event, recorded.position
        job_id = str(event.originator_id)
        log.check_order(position, job_id, event.originator_version)
        if isinstance(event, Job.Created):
            owners[job_id] = event.owner
            log.created_seq[job_id] = position
            if event.idempotency_key is not None:
                key = (event.owner, event.idempotency_key)
                log.keys[key] = (*key, event.request_hash, job_id)
        _fold(log, job_id, recorded)
        row = projector.event_row(position, event, owners.get(job_id, ""))
        log.events[row[:1]] = row
        log.last_position[job_id] = position
        log.last = position
    return log


def _fold(log: _Log, job_id: str, recorded: projector.Recorded) -> None:
    if job_id in log.jobs and log.jobs[job_id] is None:
        return  # already reported
    try:
        log.jobs[job_id] = export.fold(log.jobs.get(job_id), recorded)
    except export.BrokenHistory as exc:
        key = _job_key(job_id, exc.version)
        log.problems.append(Mismatch("jobs", key, f"its events do not fold: {exc.reason}"))
        log.jobs[job_id] = None


def _job_rows(log: _Log) -> Rows:
    rows: Rows = {}
    counts: collections.Counter[tuple[Any, ...]] = collections.Counter()
    for job_id, last_position in log.last_position.items():
        job = log.jobs[job_id]
        if job is not None and not job.deleted:
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
        name = _name(table, key, want or tuple(row))
        if want is None:
            problems.append(Mismatch(table, name, "not in the fold of the events"))
        elif want != tuple(row):
            columns = [str(i) for i, (w, a) in enumerate(zip(want, row, strict=True)) if w != a]
            problems.append(Mismatch(table, name, f"differs in columns {', '.join(columns)}"))
    problems += [
        Mismatch(table, _name(table, key, expected[key]), "missing")
        for key in expected.keys() - seen
    ]
    return problems


def _name(table: str, key: tuple[Any, ...], row: tuple[Any, ...]) -> str:
    """The row's key, and the job and version it is about (events: id, job_id, version...;
    jobs: id, ..., version as the 17th column)."""
    name = " ".join(map(str, key))
    if table == "events" and len(row) > 2:
        return f"{name} (job {row[1]} version {row[2]})"
    if table == "jobs" and len(row) > 16:
        return _job_key(name, row[16])
    return name


def _job_key(job_id: str, version: Any) -> str:
    return f"{job_id} (version {version})"
