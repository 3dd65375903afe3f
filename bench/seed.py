"""Seeding data fast: the real group-commit writer, in-process, fed from many futures at
once (no HTTP). Every event goes through the same code path as a request's: a command in a
unit of work, one `save()` per group, read models written in the same transaction."""

from __future__ import annotations

import collections
import contextlib
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.report import rate, say
from service.jobs import commands
from service.principal import Principal
from service.settings import Settings
from service.store import backends
from service.store.unit_of_work import UnitOfWork
from service.store.writer import Commit, Writer

MEASURED_OWNER = "alice"
OTHER_OWNERS = tuple(f"tenant-{i}" for i in range(1, 10))
TYPES = ("report", "export", "import", "email", "resize")
CATEGORIES = (None, "billing", "media", "ops", "analytics")
PRIORITIES = ("low", "normal", "normal", "normal", "high")
ADMIN = Principal(
    sub="bench-admin", scopes=frozenset({"admin"}), expires_at=datetime(9999, 1, 1, tzinfo=UTC)
)
_WINDOW = 8192  # futures in flight: enough to keep the writer's groups full
_RESULT_TIMEOUT = 300.0
CHUNK = 10_000


@dataclass
class SeedStats:
    commands: int = 0
    events: int = 0
    batches: int = 0
    seconds: float = 0.0
    chunk_rates: list[float] = field(default_factory=list)  # events/s of each chunk of jobs

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def avg_group(self) -> float:
        return self.commands / self.batches if self.batches else 0.0


@contextlib.contextmanager
def writer_on(settings: Settings, *, cache_size: int | None = None) -> Iterator[Writer]:
    """A started writer on a freshly opened store; stopped and closed on exit."""
    store = backends.open_store(settings)
    try:
        writer = Writer(
            store,
            cache_size=settings.aggregate_cache_size if cache_size is None else cache_size,
            max_batch=settings.max_batch,
            snapshot_interval=settings.snapshot_interval,
        )
        writer.start()
        try:
            yield writer
        finally:
            writer.stop()
    finally:
        store.close()


class _Meter:
    """Counts what the writer commits (called from the writer thread)."""

    def __init__(self) -> None:
        self.events = 0
        self.commands = 0
        self.batches = 0

    def __call__(self, commit: Commit) -> None:
        self.events += commit.events
        self.commands += commit.commands
        self.batches += 1


def submit_all(writer: Writer, work: Iterable[Callable[[UnitOfWork], Any]]) -> list[Any]:
    """Submits every command, `_WINDOW` in flight at a time; returns their values in order."""
    pending: collections.deque[Any] = collections.deque()
    values: list[Any] = []
    for command in work:
        pending.append(writer.submit(command))
        if len(pending) >= _WINDOW:
            values.append(pending.popleft().result(_RESULT_TIMEOUT).value)
    while pending:
        values.append(pending.popleft().result(_RESULT_TIMEOUT).value)
    return values


def start_job(job_id: uuid.UUID) -> Callable[[UnitOfWork], uuid.UUID]:
    def command(uow: UnitOfWork) -> uuid.UUID:
        job = uow.get(job_id)
        job.start(
            worker_id="bench-worker",
            lease_token=uuid.uuid4().hex,
            lease_expires_at=uow.now + timedelta(hours=1),
            now=uow.now,
        )
        return job.id

    return command


def succeed_job(job_id: uuid.UUID) -> Callable[[UnitOfWork], uuid.UUID]:
    def command(uow: UnitOfWork) -> uuid.UUID:
        start_job(job_id)(uow)
        job = uow.get(job_id)
        job.succeed(result={"rows": 42}, result_type="table", now=uow.now)
        return job.id

    return command


def progress(job_id: uuid.UUID, percent: float) -> Callable[[UnitOfWork], int]:
    def command(uow: UnitOfWork) -> int:
        job = uow.get(job_id)
        job.report_progress({"percent": percent}, now=uow.now)
        return int(job.version)

    return command


def _create(spec: commands.JobSpec, owner: str) -> Callable[[UnitOfWork], commands.Created]:
    return commands.create_job(spec, owner=owner, idempotency_key=None, request_hash=None)


def _spec(rng: random.Random, i: int) -> commands.JobSpec:
    return commands.JobSpec(
        type=rng.choice(TYPES),
        name=f"job {i}",
        category=rng.choice(CATEGORIES),
        priority=rng.choice(PRIORITIES),
        payload={"n": i, "source": f"s3://bucket/{i % 97}/input.csv"},
        metadata={"team": f"team-{i % 7}"},
    )


def _changes(rng: random.Random, ids: list[uuid.UUID]) -> list[Callable[[UnitOfWork], Any]]:
    """10 % cancelled, 10 % running, 10 % succeeded (the rest pending); 5 % starred."""
    work: list[Callable[[UnitOfWork], Any]] = []
    for job_id in ids:
        draw = rng.random()
        if draw < 0.10:
            work.append(commands.cancel_job(job_id, ADMIN, "not needed"))
        elif draw < 0.20:
            work.append(start_job(job_id))
        elif draw < 0.30:
            work.append(succeed_job(job_id))
        if rng.random() < 0.05:
            work.append(commands.update_job(job_id, ADMIN, {"starred": True}))
    return work


def seed_jobs(settings: Settings, n: int, *, seed: int = 7) -> SeedStats:
    """`n` jobs: half of them the measured owner's, the rest spread over nine others."""
    rng = random.Random(seed)
    meter = _Meter()
    chunk_rates: list[float] = []
    started = time.perf_counter()
    # The cache holds a whole chunk, so the changes after it never reload a job.
    with writer_on(settings, cache_size=CHUNK + 1000) as writer:
        writer.on_commit(meter)
        for low in range(0, n, CHUNK):
            chunk_started, chunk_events = time.perf_counter(), meter.events
            owners = [
                MEASURED_OWNER if rng.random() < 0.5 else rng.choice(OTHER_OWNERS)
                for _ in range(low, min(n, low + CHUNK))
            ]
            created = submit_all(
                writer, (_create(_spec(rng, low + k), o) for k, o in enumerate(owners))
            )
            submit_all(writer, _changes(rng, [c.job_id for c in created]))
            elapsed = time.perf_counter() - chunk_started
            chunk_rates.append((meter.events - chunk_events) / elapsed)
    seconds = time.perf_counter() - started
    return SeedStats(meter.commands, meter.events, meter.batches, seconds, chunk_rates)


@dataclass
class Streams:
    short: uuid.UUID
    long: uuid.UUID
    primer: uuid.UUID  # like `short`; touched first after a restart, so no measured
    stats: SeedStats  # operation pays for first-use costs; stats: the long stream's only


def seed_streams(settings: Settings, long_events: int, short_events: int = 10) -> Streams:
    """Running jobs of the measured owner: two with `short_events` events, one with
    `long_events` (created + started + progress)."""
    spec = commands.JobSpec(type="report", name="stream", payload={"n": 0})
    with writer_on(settings) as writer:
        created = submit_all(writer, [_create(spec, MEASURED_OWNER) for _ in range(3)])
        short, long, primer = (c.job_id for c in created)
        submit_all(writer, [start_job(job_id) for job_id in (short, long, primer)])
        for job_id in (short, primer):
            submit_all(writer, (progress(job_id, i) for i in range(short_events - 2)))
        meter = _Meter()
        writer.on_commit(meter)
        count = long_events - 2
        started = time.perf_counter()
        submit_all(writer, (progress(long, round(100 * i / count, 3)) for i in range(count)))
        seconds = time.perf_counter() - started
    stats = SeedStats(meter.commands, meter.events, meter.batches, seconds)
    return Streams(short, long, primer, stats)


JOB_EVENTS = 10  # created, started, 7 progress, succeeded


def whole_job(i: int) -> Callable[[UnitOfWork], uuid.UUID]:
    """One command, `JOB_EVENTS` events: a job created, run with progress and succeeded."""
    spec = commands.JobSpec(type="audit", name=f"job {i}", payload={"i": i})
    create = _create(spec, MEASURED_OWNER if i % 2 else OTHER_OWNERS[i % 9])

    def command(uow: UnitOfWork) -> uuid.UUID:
        job_id = create(uow).job_id
        start_job(job_id)(uow)
        job = uow.get(job_id)
        for step in range(JOB_EVENTS - 3):
            job.report_progress({"percent": step * 10.0, "stage": "step"}, now=uow.now)
        job.succeed(result={"i": i}, result_type="count", now=uow.now)
        return job_id

    return command


def seed_events(settings: Settings, n: int, *, first_job: int = 0) -> SeedStats:
    """About `n` events (`n` // `JOB_EVENTS` whole jobs), numbered on from `first_job`."""
    meter = _Meter()
    started = time.perf_counter()
    with writer_on(settings, cache_size=1000) as writer:
        writer.on_commit(meter)
        jobs = range(first_job, first_job + n // JOB_EVENTS)
        submit_all(writer, (whole_job(i) for i in jobs))
    seconds = time.perf_counter() - started
    return SeedStats(meter.commands, meter.events, meter.batches, seconds)


def grown(folder: Path, sizes: Iterable[int], part: str) -> Iterator[tuple[Settings, int]]:
    """An SQLite store in `folder`, seeded (`seed_events`) to each of `sizes` in turn: the
    store's settings and its size, at each."""
    settings = Settings(
        database_url=f"sqlite:///{folder / 'jobtrail.db'}",
        data_dir=folder,
        jwt_secret="bench-" + "x" * 32,
    )
    have = 0
    for size in sizes:
        stats = seed_events(settings, size - have, first_job=have // JOB_EVENTS)
        say(f"[{part}] seeded {size:,} events ({rate(stats.events_per_s)} events/s)")
        have = size
        yield settings, size
