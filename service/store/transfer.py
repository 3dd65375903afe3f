"""Copying an SQLite store into an empty PostgreSQL database (`jobtrail store copy`), with the
service stopped.

What goes over, and how:
- the events, in id order, under the ids they had (clients' Last-Event-ID values and cursors
  stay valid), byte for byte, each with its hash chain links: the target's heads are the
  source's. The target's id sequence moves on past the last.
- the read models are built on the target by projecting the events as they go in (jobs,
  the events index, counts, idempotency keys, leases as `started` events set them), never
  copied. The one state of the read models that no event holds, the leases' renewals, is
  taken over from the source's `leases` table.
- snapshots are taken anew, every `Sizes.interval` versions of a job, as the writer takes them.

One transaction on the target, holding its events table's lock: all or nothing (a copy that
fails or is interrupted leaves the target as it was, empty). Constant memory at any size: the
events stream from one read transaction of the source, a chunk at a time, and the fold keeps a
bounded number of jobs. Before, the source must verify clean (`audit verify`); after, the
target must, with the source's heads, event count and leases.
"""

from __future__ import annotations

import copy
import itertools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from domain.job import Job
from projections import leases, projector
from service.store import chain, rebuild, verification

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from eventsourcing.domain import Snapshot

    from projections.projector import Recorded
    from projections.sql import Cursor
    from service.store.base import EventStore
    from service.store.postgres import PostgresEventStore

T = TypeVar("T")
FINDINGS_SHOWN = 10


class CopyError(Exception):
    """The store was not copied, or (`CopyMismatch`) its copy does not check out."""


class SourceNotClean(CopyError):
    """The source store does not verify."""

    def __init__(self, findings: list[str], count: int) -> None:
        super().__init__(f"the source does not verify ({count} finding(s))")
        self.findings = findings  # the first few, as `audit verify` prints them
        self.count = count


class TargetNotEmpty(CopyError):
    """The target database holds events already."""

    def __init__(self, newest: int) -> None:
        super().__init__(f"the target holds events already (up to id {newest})")
        self.newest = newest


class SourceChanged(CopyError):
    """The source changed after it was verified: is its service stopped?"""


class CopyMismatch(CopyError):
    """The copy, committed, does not verify or differs from the source."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"the copy differs from the source: {'; '.join(problems)}")
        self.problems = problems


@dataclass(frozen=True, slots=True, kw_only=True)
class Sizes:
    """How the copy goes: snapshots every `interval` versions of a job (as the writer takes
    them), `chunk` events at a time, up to `kept` jobs folded in memory (an older one is
    loaded again from the source, from its snapshot, at its next event)."""

    interval: int = 100
    chunk: int = 2000
    kept: int = 10_000


class Progress(Protocol):
    def __call__(self, phase: str, done: int, total: int) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Tally:
    """What a store holds, as verify saw it."""

    events: int
    head: verification.Head
    leases: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Copied:
    source: Tally
    target: Tally
    seconds: float  # the copy itself: events, read models, leases, commit


def copy_store(
    source: EventStore, target: PostgresEventStore, *, sizes: Sizes, progress: Progress
) -> Copied:
    """Copies `source` into the empty `target`, then checks the copy (see the module)."""
    before = _verified(source, "source", progress)
    started = time.perf_counter()
    with target.transaction() as cursor:
        newest = target.newest_id(cursor)
        if newest:
            raise TargetNotEmpty(newest)
        with source.scan() as scan:
            copied, head = _copy_events(scan.events(0, hashes=True), source, target, cursor,
                                        sizes=sizes, total=before.events,
                                        progress=progress)  # fmt: skip
            if (copied, head) != (before.events, before.head):
                raise SourceChanged()
            carried = 0
            for rows in _chunks(leases.every(scan.cursor()), sizes.chunk):
                leases.renew_all(cursor, rows)
                carried += len(rows)
        if source.max_position() != head.event_id:  # written since the scan began
            raise SourceChanged()
        target.continue_ids_after(cursor, head.event_id)
        progress("committing", copied, copied)
    seconds = time.perf_counter() - started
    after = _verified(target, "target", progress)
    problems = [
        f"{what}: source {theirs}, target {ours}"
        for what, theirs, ours in (
            ("events", before.events, after.events),
            ("head", before.head, after.head),
        )
        if theirs != ours
    ]
    problems += _compare_leases(source, target)
    if problems:
        raise CopyMismatch(problems)
    return Copied(
        source=Tally(events=before.events, head=before.head, leases=carried),
        target=Tally(events=after.events, head=after.head, leases=carried),
        seconds=seconds,
    )


def _verified(store: EventStore, which: str, progress: Progress) -> Tally:
    progress(f"verifying the {which}", 0, 0)
    verifier = verification.Verifier(store)
    shown: list[str] = []
    count = 0
    for problem in verifier.run():
        count += 1
        if len(shown) < FINDINGS_SHOWN:
            shown.append(f"{problem.table} {problem.key}: {problem.problem}")
    if count:
        if which == "source":
            raise SourceNotClean(shown, count)
        raise CopyMismatch(shown)
    return Tally(events=verifier.events, head=verifier.head)


def _copy_events(
    events: Iterator[tuple[chain.Link, Recorded | None]],
    source: EventStore,
    target: PostgresEventStore,
    cursor: Cursor,
    *,
    sizes: Sizes,
    total: int,
    progress: Progress,
) -> tuple[int, verification.Head]:
    """The events, their read-model rows and snapshots; how many, and the last log hash."""
    states = rebuild.States(source.load, kept=sizes.kept)
    snapshots: list[Snapshot] = []

    def snapshot(job: Job) -> None:
        if job.version % sizes.interval == 0:  # a deep copy: the fold goes on changing the job
            snapshots.append(copy.deepcopy(Job.Snapshot.take(job)))

    copied, head = 0, verification.Head(0, chain.GENESIS.hex())
    for chunk in _chunks(events, sizes.chunk):
        links = [link for link, _ in chunk]
        recorded = [r for _, r in chunk if r is not None]
        if len(recorded) != len(chunk):
            raise SourceChanged()  # it decoded when it was verified
        target.copy_in(cursor, links)
        projector.apply(cursor, recorded, states.fold(recorded, snapshot))
        if snapshots:
            target.snapshots_in(cursor, snapshots)
            snapshots.clear()
        copied += len(chunk)
        last = links[-1]
        assert last.log_hash is not None
        head = verification.Head(last.id, last.log_hash.hex())
        progress("copying", copied, total)
    return copied, head


def _compare_leases(source: EventStore, target: PostgresEventStore) -> list[str]:
    with source.scan() as theirs, target.scan() as ours:
        pairs = itertools.zip_longest(leases.every(theirs.cursor()), leases.every(ours.cursor()))
        for mine, copied in pairs:
            if mine != copied:
                return [f"leases: source {mine}, target {copied}"]
    return []


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
