"""Part (h): soak — steady mixed load on one `jobtrail serve` for about ten minutes (one with
`--quick`), watching the server over time: throughput, p99 latency, RSS and open file
descriptors per interval, and every error.

The load is paced, not saturating (a soak looks for leaks and drift, not for the ceiling):
creators at a fixed rate; SDK workers that claim, report progress and logs, and succeed;
readers of job pages and list pages; SSE subscribers on the all-events stream, each of which
reconnects now and then (resuming with Last-Event-ID) so that connections come and go.

Pass: no error (every answer the one expected), and RSS and descriptors flat: their mean over
the last minute within 10 % of their mean over the second minute (after warm-up: the writer's
job cache fills, SQLite's page cache grows to its bound). With `--quick`, fifths of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import servers
from bench.report import Summary, ms, percentile, say, table

OWNER = "bench-soak"
CREATES_PER_SECOND = 40
WORKERS = 8
READERS = 4  # each: a job page and a list page, then a pause
READ_PAUSE = 0.1
SUBSCRIBERS = 20
RESUBSCRIBE_SECONDS = 30  # each subscriber reconnects after about this long
INTERVAL = 10.0  # seconds per sample
FLAT = 0.10  # the last interval within this of the reference one


@dataclass
class Interval:
    requests: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    events: int = 0


class Load:
    """The clients' shared tally: the current interval, which the sampler swaps out."""

    def __init__(self) -> None:
        self.now = Interval()
        self.stop = asyncio.Event()
        self.created: list[str] = []

    def answered(self, started: float, response: httpx.Response, *expected: int) -> None:
        self.now.requests += 1
        self.now.latencies.append(time.perf_counter() - started)
        if response.status_code not in expected:
            self.now.errors.append(
                f"{response.request.method} {response.request.url.path}: "
                f"{response.status_code} {response.text[:120]}"
            )

    def failed(self, what: str, exc: BaseException) -> None:
        self.now.errors.append(f"{what}: {type(exc).__name__}: {exc}")


async def _call(
    load: Load, client: httpx.AsyncClient, method: str, path: str, *expected: int, **kw: object
) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = await client.request(method, path, **kw)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        load.failed(f"{method} {path}", exc)
        return None
    load.answered(started, response, *expected)
    return response


async def _creator(load: Load, client: httpx.AsyncClient) -> None:
    """Creates at a fixed rate whatever the latency (open loop), at most 16 in flight (so
    the connections it holds, counted in the server's descriptors, stay bounded)."""
    period = 1 / CREATES_PER_SECOND
    in_flight = asyncio.Semaphore(16)
    pending: set[asyncio.Task[None]] = set()

    async def create(n: int) -> None:
        async with in_flight:
            body = {"type": "soak.work", "name": f"soak {n}", "payload": {"n": n}}
            created = await _call(load, client, "POST", "/api/v1/jobs", 201, json=body)
            if created is not None and created.status_code == 201:
                load.created.append(created.json()["id"])

    next_at = time.perf_counter()
    for n in itertools.count():
        if load.stop.is_set():
            break
        task = asyncio.create_task(create(n))
        pending.add(task)
        task.add_done_callback(pending.discard)
        next_at += period
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    await asyncio.gather(*pending)


async def _worker(load: Load, client: httpx.AsyncClient, n: int) -> None:
    claim = {"types": ["soak.work"], "worker_id": f"soak-{n}", "wait_seconds": 1}
    while not load.stop.is_set():
        answer = await _call(load, client, "POST", "/api/v1/workers/claim", 200, 204, json=claim)
        if answer is None or answer.status_code != 200:
            continue
        job = answer.json()
        path = f"/api/v1/jobs/{job['job']['id']}"
        lease = {"Job-Lease": job["lease"]["token"]}
        for percent in (20.0, 40.0, 60.0, 80.0):
            progress = {"percent": percent, "message": f"at {percent}"}
            await _call(load, client, "POST", f"{path}/progress", 200, json=progress, headers=lease)
        log = {"message": "halfway", "level": "info"}
        await _call(load, client, "POST", f"{path}/logs", 200, 202, json=log, headers=lease)
        result = {"result": {"ok": True}}
        await _call(load, client, "POST", f"{path}/succeed", 200, json=result, headers=lease)


async def _reader(load: Load, client: httpx.AsyncClient) -> None:
    while not load.stop.is_set():
        if load.created:
            job_id = load.created[-1]
            await _call(load, client, "GET", f"/api/v1/jobs/{job_id}", 200)
        await _call(load, client, "GET", "/api/v1/jobs", 200, params={"limit": 50})
        await asyncio.sleep(READ_PAUSE)


async def _subscriber(load: Load, client: httpx.AsyncClient, n: int) -> None:
    last_id: str | None = None
    while not load.stop.is_set():
        headers = {"Accept": "text/event-stream"}
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        until = time.monotonic() + RESUBSCRIBE_SECONDS * (0.5 + (n % 10) / 10)
        try:
            async with client.stream("GET", "/api/v1/events", headers=headers) as stream:
                if stream.status_code != 200:
                    load.now.errors.append(f"stream: {stream.status_code}")
                    await asyncio.sleep(1)
                    continue
                async for line in stream.aiter_lines():
                    if line.startswith("id: "):
                        last_id = line[4:]
                        load.now.events += 1
                    if load.stop.is_set() or time.monotonic() > until:
                        break
        except httpx.HTTPError as exc:
            if not load.stop.is_set():
                load.failed("stream", exc)


def _process_tree(pid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            pids.append(int(entry.name))
    return pids


def _rss_and_fds(pid: int) -> tuple[float, int]:
    """MiB of resident memory, and open descriptors, of the server (its processes)."""
    rss_kib, fds = 0, 0
    for each in _process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss_kib += int(line.split()[1])
            fds += len(os.listdir(f"/proc/{each}/fd"))
    return rss_kib / 1024, fds


async def _soak(url: str, token: str, worker_token: str, pid: int, seconds: float) -> list[tuple]:
    load = Load()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)

    def client(bearer: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {bearer}"},
            timeout=httpx.Timeout(30, read=60),
            limits=limits,
        )

    rows: list[tuple] = []
    async with client(token) as users, client(worker_token) as workers:
        tasks = [asyncio.create_task(_creator(load, users))]
        tasks += [asyncio.create_task(_worker(load, workers, n)) for n in range(WORKERS)]
        tasks += [asyncio.create_task(_reader(load, users)) for _ in range(READERS)]
        tasks += [asyncio.create_task(_subscriber(load, users, n)) for n in range(SUBSCRIBERS)]
        started = time.monotonic()
        for n in itertools.count(1):
            await asyncio.sleep(max(0.0, started + n * INTERVAL - time.monotonic()))
            sample, load.now = load.now, Interval()
            rss, fds = _rss_and_fds(pid)
            rows.append(
                (
                    round(n * INTERVAL),
                    sample.requests / INTERVAL,
                    percentile(sample.latencies, 99),
                    sample.events / INTERVAL,
                    rss,
                    fds,
                    sample.errors,
                )
            )
            say(
                f"  {n * INTERVAL:5.0f} s: {sample.requests / INTERVAL:6.0f} req/s, p99 "
                f"{ms(percentile(sample.latencies, 99))} ms, {sample.events / INTERVAL:6.0f} "
                f"events/s streamed, RSS {rss:.1f} MiB, {fds} fds, {len(sample.errors)} errors"
            )
            if n * INTERVAL >= seconds:
                break
        load.stop.set()
        await asyncio.wait(tasks, timeout=30)
        for task in tasks:
            task.cancel()
    return rows


def run(*, quick: bool = False, summary: Summary) -> None:
    seconds = 60.0 if quick else 600.0
    with tempfile.TemporaryDirectory(prefix="jobtrail-soak-") as tmp:
        db = Path(tmp) / "jobtrail.db"
        with servers.jobtrail(db, pinned=True) as server:
            say(
                f"\n[soak] {seconds:.0f} s of mixed load on one server (SQLite, FULL): "
                f"{CREATES_PER_SECOND} creates/s, {WORKERS} workers, {READERS} readers, "
                f"{SUBSCRIBERS} SSE subscribers reconnecting every ~{RESUBSCRIBE_SECONDS} s"
            )
            rows = asyncio.run(
                _soak(
                    f"http://127.0.0.1:{server.port}",
                    servers.token(OWNER),
                    servers.token("bench-soak-worker", ("worker",)),
                    server.process.pid,
                    seconds,
                )
            )
    errors = [error for row in rows for error in row[6]]
    # The second minute against the last one (fifths of the run when it is shorter).
    window = 60.0 if seconds >= 180 else seconds / 5
    second = [r for r in rows if window < r[0] <= 2 * window]
    final = [r for r in rows if r[0] > seconds - window]
    rss_then, rss_now = _mean(r[4] for r in second), _mean(r[4] for r in final)
    fds_then, fds_now = _mean(r[5] for r in second), _mean(r[5] for r in final)
    rss_drift, fd_drift = rss_now / rss_then - 1, fds_now / fds_then - 1
    say(
        table(
            "soak: per interval",
            ["second", "req/s", "p99 ms", "events/s", "RSS MiB", "fds", "errors"],
            [
                (r[0], f"{r[1]:.0f}", ms(r[2]), f"{r[3]:.0f}", f"{r[4]:.1f}", r[5], len(r[6]))
                for r in rows
            ],
        )
    )
    for error in errors[:10]:
        say(f"  error: {error}")
    flat = abs(rss_drift) <= FLAT and abs(fd_drift) <= FLAT
    verdict = "PASS" if flat and not errors else "FAIL"
    summary.add("soak_seconds", f"{seconds:.0f}")
    summary.add("soak_requests_per_second", f"{sum(r[1] for r in rows) / len(rows):.0f}")
    summary.add("soak_p99_ms_worst_interval", ms(max(r[2] for r in rows)))
    span = f"{window:.0f}-{2 * window:.0f} s vs the last {window:.0f} s"
    summary.add("soak_rss_mib", f"{rss_then:.1f} -> {rss_now:.1f} ({rss_drift:+.1%}; {span})")
    summary.add("soak_fds", f"{fds_then:.0f} -> {fds_now:.0f} ({fd_drift:+.1%}; {span})")
    summary.add("soak_errors", len(errors))
    summary.add("soak_verdict", f"{verdict} (flat within {FLAT:.0%}, no errors)")


def _mean(values: Iterable[float]) -> float:
    listed = list(values)
    return sum(listed) / len(listed)
