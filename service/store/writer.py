"""One writer thread per process: it runs the commands of concurrent requests and commits
them in groups, so durability (an fsync per commit) is paid once per group, not per request.

A command is a function of a `UnitOfWork`. It loads jobs, calls their methods and returns a
value; it must raise before changing anything when a rule forbids its change (the domain's
commands do). The writer records every event of the group in one transaction, together with
the read-model rows, then resolves each request's future.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from uuid import UUID

from domain.job import Job
from projections import projector
from service import errors
from service.store.base import ProjectionBatch
from service.store.ids import JobIds
from service.store.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from collections.abc import Callable

    from eventsourcing.domain import Snapshot

    from projections.sql import Cursor
    from service.store.base import EventStore

T = TypeVar("T")
log = logging.getLogger("jobtrail.writer")

_CONFLICT_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Committed(Generic[T]):
    """A command's return value, and the rendered documents of the jobs its group changed."""

    value: T
    documents: dict[UUID, str]
    position: int


@dataclass(frozen=True, slots=True)
class Commit:
    """One transaction: the id of its last event, and how many commands and events it held."""

    position: int
    commands: int
    events: int


@dataclass(slots=True)
class _Request:
    command: Callable[[UnitOfWork], Any]
    # Called once, from the writer thread, with the outcome: (committed, None) or (None, error).
    settle: Callable[[Committed[Any] | None, BaseException | None], None] | None = None
    # An async caller's future, settled on its loop: a group's are settled in one hop.
    waiter: asyncio.Future[Any] | None = None
    settled: bool = False


class _Poisoned(Exception):
    """A command raised after changing a job: the group is split until it stands alone."""


class Writer:
    def __init__(
        self,
        store: EventStore,
        *,
        cache_size: int = 4096,
        max_batch: int = 512,
        snapshot_interval: int = 100,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        policy: Callable[[UnitOfWork], None] | None = None,
    ) -> None:
        self.store = store
        # Runs after every command, in its unit of work: reactions to the command's changes
        # (a batch parent following its children) commit atomically with them.
        self._policy = policy
        self._cache: collections.OrderedDict[UUID, Job] = collections.OrderedDict()
        # The leases of running jobs as this writer's groups committed them (leases.current).
        self._leases: dict[UUID, tuple[str, float, int]] = {}
        self._cache_size = cache_size
        self._max_batch = max_batch
        self._snapshot_interval = snapshot_interval
        self._clock = clock
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="jobtrail-writer", daemon=True)
        self._listeners: list[Callable[[Commit], None]] = []
        self.ids = JobIds()
        # The newest event id this writer knows of: any newer one was written by another
        # process on the same database, and the jobs it changed leave the cache.
        self._seen = 0
        self._stopped = False
        self.batches = 0
        self.commands = 0
        # Why the last group failed to commit (the database's fault), until a group that
        # writes commits: what `/readyz` reports meanwhile. Set by the writer thread only.
        self.fault: errors.Fault | None = None
        self._probe: Future[Committed[None]] | None = None
        self._probe_lock = threading.Lock()

    def start(self) -> None:
        self._seen = self.store.max_position()
        self._thread.start()

    def stop(self) -> None:
        """Finishes every command already submitted, then stops."""
        self._stopped = True
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        # A command that slipped in behind the stop is refused, not left waiting forever.
        while True:
            try:
                late = self._queue.get_nowait()
            except queue.Empty:
                return
            if late is not None:
                _fail(late, RuntimeError("The writer has stopped."))

    @property
    def queued(self) -> int:
        """Commands submitted and not yet taken into a group (approximate while it runs)."""
        return self._queue.qsize()

    def on_commit(self, listener: Callable[[Commit], None]) -> None:
        """Calls `listener(commit)` from the writer thread after each commit."""
        self._listeners.append(listener)

    def submit(self, command: Callable[[UnitOfWork], T]) -> Future[Committed[T]]:
        """Queues the command; the future completes once its events are durable."""
        future: Future[Committed[T]] = Future()

        def settle(value: Committed[Any] | None, exc: BaseException | None) -> None:
            if exc is None:
                future.set_result(value)  # type: ignore[arg-type]
            else:
                future.set_exception(exc)

        self._enqueue(_Request(command, settle=settle))
        return future

    async def run(self, command: Callable[[UnitOfWork], T]) -> Committed[T]:
        """Runs the command in the writer and waits until its events are durable."""
        future: asyncio.Future[Committed[T]] = asyncio.get_running_loop().create_future()
        self._enqueue(_Request(command, waiter=future))
        return await future

    def _enqueue(self, request: _Request) -> None:
        if self._stopped:  # queued before start() is fine: they run once it starts
            raise RuntimeError("The writer has stopped.")
        self._queue.put(request)

    def call(self, command: Callable[[UnitOfWork], T]) -> Committed[T]:
        """Like `run`, for synchronous callers (CLI, threads)."""
        return self.submit(command).result()

    def probe(self) -> Future[Committed[None]]:
        """A write that changes nothing, through the writer: it commits once the database
        takes writes again, and so clears `fault` though no request writes. At most one is
        queued at a time: every caller meanwhile gets the same future."""
        with self._probe_lock:
            if self._probe is None or self._probe.done():
                self._probe = self.submit(_rewrite_tracking)
            return self._probe

    # The writer thread.

    def cached(self, job_id: UUID) -> Job:
        job = self._cache.get(job_id)
        if job is not None:
            self._cache.move_to_end(job_id)
            return job
        job = self.store.load(job_id)  # JobNotFound when it does not exist
        self._remember(job)
        return job

    def _remember(self, job: Job) -> None:
        self._cache[job.id] = job
        self._cache.move_to_end(job.id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                group.append(more)
            self._commit_group(group)
            if stop:
                return

    def _commit_group(self, group: list[_Request]) -> None:
        """Commits the group; a failure is pinned on the command that causes it.

        Whatever one command does (breaks a rule, carries data that cannot be encoded or
        stored, hits a bug), only its own request fails: a group that fails to commit is split
        in halves and each half committed alone, until the culprit is alone. One bad command
        among n costs about 2·log2(n) extra transactions, and every other command commits.
        Only a failure of the database itself (locked, read-only, gone), which no command
        causes and which no split would cure, fails the whole group at once.
        """
        try:
            self._execute(group)
        except errors.StoreUnavailable as exc:  # no command's fault; no split would cure it
            if self.fault is None:
                log.error("writer group of %d failed: %s (%s)", len(group), exc, exc.fault)
            self.fault = exc.fault
            for request in group:
                _fail(request, exc)
        except Exception as exc:
            if len(group) == 1:
                self._retry_alone(group[0], exc)
            else:
                half = len(group) // 2
                self._commit_group(group[:half])
                self._commit_group(group[half:])

    def _retry_alone(self, request: _Request, first: Exception) -> None:
        failure: BaseException = first
        attempts = 0
        while isinstance(failure, errors.ConcurrentChange) and attempts < _CONFLICT_RETRIES:
            attempts += 1
            try:
                self._execute([request])
            except Exception as again:
                failure = again
            else:
                return
        if isinstance(failure, errors.ConcurrentChange):
            _fail(request, failure)
        elif isinstance(failure, errors.StoreUnavailable):  # the database failed meanwhile
            self.fault = failure.fault
            _fail(request, failure)
        elif isinstance(failure, _Poisoned) and failure.__cause__ is not None:
            _fail(request, failure.__cause__)
        else:
            log.error("command failed", exc_info=failure)
            _fail(request, failure)

    def _execute(self, group: list[_Request]) -> None:
        jobs: dict[UUID, Job] = {}
        try:
            with self.store.transaction() as cursor:
                self._forget_foreign_changes(cursor)
                uow = UnitOfWork(
                    load=self.cached,
                    new_id=self.ids.new,
                    cursor=cursor,
                    clock=self._clock,
                    interval=self._snapshot_interval,
                    known_leases=self._leases,
                )
                jobs = uow.jobs
                outcomes = self._run_commands(uow, group)
                batch = ProjectionBatch(
                    events=[_typed(e) for job in jobs.values() for e in job.collect_events()],
                    jobs=dict(jobs),
                    writes=uow.writes,
                )
                self.store.record(cursor, batch)
        except BaseException:
            for job_id in jobs:
                self._cache.pop(job_id, None)
            raise
        for job in uow.jobs.values():
            if job.deleted:
                self._cache.pop(job.id, None)
            else:
                self._remember(job)
        self._remember_leases(uow)
        if self.fault is not None and (batch.positions or batch.writes):
            self._cleared()
        position = batch.positions[-1] if batch.positions else 0
        self._seen = max(self._seen, position)
        self.batches += 1
        self.commands += len(group)
        _settle_all(
            [
                (request, None if failure else Committed(value, batch.documents, position), failure)
                for request, value, failure in outcomes
            ]
        )
        if uow.snapshots:
            self._store_snapshots(uow.snapshots)
        if batch.positions:
            commit = Commit(position, len(group), len(batch.positions))
            for listener in self._listeners:
                listener(commit)

    def _cleared(self) -> None:
        """A write has committed: the fault is gone, unless the disk is still full (a small
        write, a probe's, can commit where the next one would not fit)."""
        if self.fault is errors.Fault.DISK_FULL and self.store.disk_full():
            return
        log.warning("the store takes writes again (after: %s)", self.fault)
        self.fault = None

    def _forget_foreign_changes(self, cursor: Cursor) -> None:
        """Drops from the cache every job another process changed since this writer last
        looked. The group's transaction holds the write lock: nothing else changes until it
        commits, so what the commands load is current (`jobtrail serve --workers N`)."""
        newest, changed = self.store.written_after(cursor, self._seen)
        for job_id in changed:
            self._cache.pop(job_id, None)
            self._leases.pop(job_id, None)
        self._seen = newest

    def _remember_leases(self, uow: UnitOfWork) -> None:
        """After a commit: the leases the group read, set or renewed, of jobs still running."""
        for job_id, lease in uow.leases.items():
            job = uow.jobs.get(job_id)
            if lease is None or job is None or job.deleted or job.status != "running":
                self._leases.pop(job_id, None)
            else:
                self._leases[job_id] = lease
        if len(self._leases) > self._cache_size:
            self._leases.clear()

    def _run_commands(
        self, uow: UnitOfWork, group: list[_Request]
    ) -> list[tuple[_Request, Any, BaseException | None]]:
        """Runs each command (and the policies that react to it) against the group's jobs."""
        outcomes: list[tuple[_Request, Any, BaseException | None]] = []
        for request in group:
            uow.begin()
            try:
                value = request.command(uow)
                if self._policy is not None:
                    self._policy(uow)
            except Exception as exc:
                if uow.changed():
                    raise _Poisoned() from exc
                outcomes.append((request, None, exc))
            else:
                uow.end()
                outcomes.append((request, value, None))
        return outcomes

    def _store_snapshots(self, snapshots: list[Snapshot]) -> None:
        try:
            self.store.put_snapshots(snapshots)
        except Exception:  # A missed snapshot only costs a longer load later.
            log.exception("storing %d snapshots failed", len(snapshots))


def _rewrite_tracking(uow: UnitOfWork) -> None:
    uow.writes.append(projector.rewrite_tracking)


def _typed(event: object) -> Job.Event | Job.Created:
    assert isinstance(event, Job.Event | Job.Created)
    return event


Outcome = tuple[_Request, "Committed[Any] | None", "BaseException | None"]


def _fail(request: _Request, exc: BaseException) -> None:
    _settle_all([(request, None, exc)])


def _settle_all(outcomes: list[Outcome]) -> None:
    """Settles each request once: sync callers at once, async ones in one hop per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for outcome in outcomes:
        request, value, exc = outcome
        if request.settled:
            continue
        request.settled = True
        if request.waiter is not None:
            by_loop.setdefault(request.waiter.get_loop(), []).append(outcome)
        elif request.settle is not None:
            request.settle(value, exc)
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_waiters, settled)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            pass


def _settle_waiters(outcomes: list[Outcome]) -> None:
    for request, value, exc in outcomes:
        waiter = request.waiter
        if waiter is None or waiter.done():  # cancelled (client gone): its outcome stands
            continue
        if exc is None:
            waiter.set_result(value)
        else:
            waiter.set_exception(exc)
