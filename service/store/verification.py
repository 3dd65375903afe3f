"""`jobtrail audit verify`: the proof that the stored events are the ones jobtrail wrote and
that the read models equal their fold.

Two passes over one read transaction (a consistent view, also of a running service's store),
each streaming at constant memory whatever the size of the store:
1. the log, in id order: the log hash chain (service/store/chain.py) links every event to the
   one before it; an event with no hash was inserted, a hash with no event lost its event.
2. the events in (job, version) order, with the read tables read in the same key order beside
   them: each job's hash chain, versions contiguous and ids increasing, the job folded afresh
   by the domain model (no snapshot trusted), and every read-model row compared column by
   column with what the fold gives. Only one job's events are held at a time.
Findings stream out as they are found; each names the job and version (or the row) at fault.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.job import Job
from projections import audit, projector
from service.store import chain, export

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from service.store.base import EventStore, Scan

Rows = dict[tuple[Any, ...], tuple[Any, ...]]  # a table's rows by their key columns
_LOG_BREAK = "the log chain breaks here: an event before it was deleted or inserted, or rewritten"
_JOB_BREAK = (
    "the job chain breaks here: this event, or the one before it in its job, was edited, "
    "moved or deleted"
)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One difference: the table (`events` also for the log's own order, `chain` for the
    hashes), the row's key (with the job id and version where it has them), what is wrong."""

    table: str
    key: str
    problem: str


@dataclass(frozen=True, slots=True)
class Head:
    """The newest hashed event and the log hash there: an operator who records it elsewhere
    can tell later whether the store was rewritten, hashes and all, up to that point."""

    event_id: int
    log_hash: str


def verify(store: EventStore) -> list[Mismatch]:
    """Every finding (none: the store verifies clean)."""
    return list(Verifier(store).run())


class Verifier:
    """`run()` streams the findings; then `head` is the log's head and `events` the number
    of stored events. `anchor`: a head recorded earlier, which the log must still hold."""

    def __init__(self, store: EventStore, anchor: Head | None = None) -> None:
        self.store = store
        self.anchor = anchor
        self.head = Head(0, chain.GENESIS.hex())
        self.events = 0

    def run(self) -> Iterator[Mismatch]:
        pending = self.store.pending_migrations()
        if pending:
            problem = f"not migrated ({', '.join(pending)}): start jobtrail on it once"
            yield Mismatch("store", "schema", problem + " (`jobtrail serve`) to add the chains")
        with self.store.scan() as scan:
            if not pending:
                yield from self._check_log(scan)
            yield from self._check_jobs(scan)

    def _check_log(self, scan: Scan) -> Iterator[Mismatch]:
        previous = chain.GENESIS
        for link in scan.log():
            if link.job_hash is None or link.log_hash is None:
                yield Mismatch("chain", _event_name(link), "no hash: inserted outside jobtrail")
                continue
            if link.job_id is None:
                yield Mismatch("chain", f"event {link.id}", "its event is gone (deleted)")
            elif chain.log_hash(previous, link.job_hash) != link.log_hash:
                yield Mismatch("chain", _event_name(link), _LOG_BREAK)
            previous = link.log_hash
            self.head = Head(link.id, previous.hex())
            if self.anchor is not None and self.anchor.event_id == link.id:
                yield from self._check_anchor()
        if self.anchor is not None and self.anchor.event_id > self.head.event_id:
            yield from self._check_anchor()

    def _check_anchor(self) -> Iterator[Mismatch]:
        assert self.anchor is not None
        if self.head != self.anchor:
            problem = (
                f"the log hash recorded there was {self.anchor.log_hash}, the store's is "
                f"{self.head.log_hash if self.head.event_id == self.anchor.event_id else 'gone'}"
                ": the store was rewritten up to it"
            )
            yield Mismatch("chain", f"head event {self.anchor.event_id}", problem)

    def _check_jobs(self, scan: Scan) -> Iterator[Mismatch]:
        tables = {
            table: _ByJob(audit.rows_by_job(scan.cursor(), table), column)
            for table, column in (("jobs", 0), ("events", 1), ("idempotency_keys", 3))
        }
        counts: collections.Counter[tuple[Any, ...]] = collections.Counter()
        job = _Job("")
        last = 0
        current = None  # the job's id as stored
        for link, recorded in scan.jobs():
            if link.job_id != current:
                current = link.job_id
                yield from job.finish(tables, counts)
                job = _Job(str(UUID(current)))
            self.events += 1
            last = max(last, link.id)
            found = job.add(link, recorded)
            if found:
                yield from found
        yield from job.finish(tables, counts)
        for table, rows in tables.items():
            for row in rows.rest():
                yield Mismatch(table, _name(table, row[:1], row), "not in the fold of the events")
        actual_counts = audit.rows(scan.cursor(), "job_counts")
        expected_counts = {key: (*key, n) for key, n in counts.items()}
        yield from _compare("job_counts", expected_counts, actual_counts)
        tracking = {("jobs",): ("jobs", last)}
        yield from _compare("tracking", tracking, audit.rows(scan.cursor(), "tracking"))


class _ByJob:
    """A read table's rows in job order, handed out a job at a time."""

    def __init__(self, rows: Iterator[tuple[Any, ...]], job_column: int) -> None:
        self._rows = rows
        self._column = job_column
        self._next = next(rows, None)

    def take(self, job_id: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The rows of jobs before `job_id` (jobs with no events), and those of `job_id`."""
        before: list[tuple[Any, ...]] = []
        mine: list[tuple[Any, ...]] = []
        while self._next is not None and self._next[self._column] <= job_id:
            (mine if self._next[self._column] == job_id else before).append(self._next)
            self._next = next(self._rows, None)
        return before, mine

    def rest(self) -> Iterator[tuple[Any, ...]]:
        while self._next is not None:
            yield self._next
            self._next = next(self._rows, None)


class _Job:
    """One job's events as they stream by: its chain, its order, its fold, its rows."""

    def __init__(self, job_id: str) -> None:
        self.id = job_id
        self.previous_hash = chain.GENESIS
        self.version = 0
        self.last_id = 0
        self.state: Job | None = None
        self.broken = False  # its events stopped folding (already reported)
        self.owner = ""
        self.created_seq = 0
        self.events: Rows = {}
        self.keys: Rows = {}

    def add(self, link: chain.Link, recorded: projector.Recorded | None) -> list[Mismatch]:
        """Checks one more event of the job; its findings (a list: usually empty)."""
        found: list[Mismatch] = []
        if link.version != self.version + 1:
            problem = f"version follows version {self.version}: versions must be contiguous"
            found.append(Mismatch("events", _event_key(link, self.id), problem))
        if link.id <= self.last_id:
            problem = f"id not after the job's previous event {self.last_id}"
            found.append(Mismatch("events", _event_key(link, self.id), problem))
        self.version, self.last_id = link.version, max(self.last_id, link.id)
        if link.job_hash is not None:  # else reported by the log pass
            if link.expected_job_hash(self.previous_hash) != link.job_hash:
                name = f"job {self.id} version {link.version} (event {link.id})"
                found.append(Mismatch("chain", name, _JOB_BREAK))
            self.previous_hash = link.job_hash
        if recorded is None:
            problem = "does not decode: edited outside jobtrail"
            found.append(Mismatch("events", _event_key(link, self.id), problem))
            self.broken = True
            return found
        event = recorded.event
        if isinstance(event, Job.Created):
            self.owner, self.created_seq = event.owner, link.id
            if event.idempotency_key is not None:
                row_key = (event.owner, event.idempotency_key)
                self.keys[row_key] = (*row_key, event.request_hash, self.id)
        if not self.broken:
            try:
                self.state = export.fold(self.state, recorded)
            except export.BrokenHistory as exc:
                problem = f"its events do not fold: {exc.reason}"
                found.append(Mismatch("jobs", _job_key(self.id, exc.version), problem))
                self.broken = True
        row = projector.event_row(link.id, event, self.owner)
        self.events[row[:1]] = row
        return found

    def finish(
        self, tables: dict[str, _ByJob], counts: collections.Counter[tuple[Any, ...]]
    ) -> Iterator[Mismatch]:
        if not self.id:
            return
        jobs: Rows = {}
        if self.state is not None and not self.broken and not self.state.deleted:
            jobs[(self.id,)] = projector.job_row(self.state, self.last_id, self.created_seq)
            counts[projector.count_key(self.state)] += 1
        for table, expected in (("jobs", jobs), ("events", self.events), ("idempotency_keys",
                                                                          self.keys)):  # fmt: skip
            before, mine = tables[table].take(self.id)
            for row in before:
                yield Mismatch(table, _name(table, row[:1], row), "not in the fold of the events")
            if table == "jobs" and self.broken:
                continue  # its row cannot be checked; reported above
            yield from _compare(table, expected, mine)


def _compare(table: str, expected: Rows, actual: Iterable[tuple[Any, ...]]) -> Iterator[Mismatch]:
    width = len(next(iter(expected))) if expected else (2 if table == "idempotency_keys" else 1)
    seen = set()
    for row in actual:
        key = tuple(row[:width])
        seen.add(key)
        want = expected.get(key)
        name = _name(table, key, want or tuple(row))
        if want is None:
            yield Mismatch(table, name, "not in the fold of the events")
        elif want != tuple(row):
            columns = [str(i) for i, (w, a) in enumerate(zip(want, row, strict=True)) if w != a]
            yield Mismatch(table, name, f"differs in columns {', '.join(columns)}")
    for key in expected.keys() - seen:
        yield Mismatch(table, _name(table, key, expected[key]), "missing")


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


def _event_name(link: chain.Link) -> str:
    job = "?" if link.job_id is None else str(UUID(link.job_id))
    return f"job {job} version {link.version} (event {link.id})"


def _event_key(link: chain.Link, job_id: str) -> str:
    return f"{link.id} (job {job_id} version {link.version})"
