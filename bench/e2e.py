"""Part (e): end to end — N no-op jobs created, claimed and succeeded by 16 concurrent SDK
workers over HTTP, against N bare POSTs to the create route on a fresh server (the baseline).

The server runs alone on CPU 0 (the real CLI, synchronous=FULL); creators and workers run in
this process on CPU 1 (httpx, the SDK itself). jobs/s counts from the first create to the last
success. Claim latency covers the claims that returned a job. After the run the service's own
count of succeeded jobs must equal N.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import servers, watch
from bench.report import Summary, ms, percentile, rate, ratio, say, table
from service.sdk.client import AsyncClient
from service.sdk.models import Claim, Job
from service.sdk.worker import JobContext, Worker

OWNER = "bench-e2e"
WORKERS = 16
CREATORS = 16
JOB = {"type": "bench.noop", "payload": {"n": 1}}


class _Tally:
    def __init__(self, target: int) -> None:
        self.target = target
        self.succeeded = 0
        self.done = asyncio.Event()


class _TimedClient(AsyncClient):
    """Records how long each successful claim took, and counts the successes reported."""

    def __init__(self, *args: Any, latencies: list[float], tally: _Tally, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._latencies = latencies
        self._tally = tally

    async def succeed(self, *args: Any, **kwargs: Any) -> Job:
        job = await super().succeed(*args, **kwargs)
        self._tally.succeeded += 1
        if self._tally.succeeded >= self._tally.target:
            self._tally.done.set()
        return job

    async def claim(self, types: list[str], **kwargs: Any) -> Claim | None:
        started = time.perf_counter()
        claimed = await super().claim(types, **kwargs)
        if claimed is not None:
            self._latencies.append(time.perf_counter() - started)
        return claimed


async def _noop(job: JobContext) -> None:
    return None


async def _create_all(urls: list[str], token: str, count: int) -> list[float]:
    """`count` creates by CREATORS concurrent creators, spread evenly over `urls`."""
    latencies: list[float] = []
    left = iter(range(count))
    each = max(1, CREATORS // len(urls))
    limits = httpx.Limits(max_connections=each, max_keepalive_connections=each)
    headers = {"Authorization": f"Bearer {token}"}
    async with contextlib.AsyncExitStack() as stack:
        https = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60)
            )
            for url in urls
        ]

        async def creator(http: httpx.AsyncClient) -> None:
            for _ in left:
                started = time.perf_counter()
                response = await http.post("/api/v1/jobs", json=JOB)
                if response.status_code != 201:
                    raise RuntimeError(f"create answered {response.status_code}")
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(creator(https[n % len(urls)]) for n in range(CREATORS)))
    return latencies


async def _end_to_end(urls: list[str], count: int, limit_seconds: float) -> dict[str, Any]:
    """Creators and workers spread evenly over `urls` (the instances)."""
    url = urls[0]
    claim_latencies: list[float] = []
    tally = _Tally(count)
    token = servers.token("bench-worker", ("worker",))
    clients = [
        _TimedClient(urls[n % len(urls)], token, latencies=claim_latencies, tally=tally)
        for n in range(WORKERS)
    ]
    workers = [
        Worker(c, {"bench.noop": _noop}, concurrency=1, wait_seconds=1, grace_seconds=5)
        for c in clients
    ]
    started = time.perf_counter()
    runs = [asyncio.create_task(w.run()) for w in workers]
    create_latencies = await _create_all(urls, servers.token(OWNER), count)
    try:
        async with asyncio.timeout(limit_seconds):
            await tally.done.wait()
    except TimeoutError:
        say(f"[e2e] timed out after {limit_seconds:.0f} s with {tally.succeeded} of {count} done")
    elapsed = time.perf_counter() - started
    for w in workers:
        w.stop()
    await asyncio.gather(*runs)
    for c in clients:
        await c.aclose()
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        headers = {"Authorization": f"Bearer {servers.token(OWNER)}"}
        page = (await http.get("/api/v1/jobs?status=succeeded&limit=1", headers=headers)).json()
    return {
        "seconds": elapsed,
        "jobs_per_s": count / elapsed,
        "claim_p50": percentile(claim_latencies, 50),
        "claim_p99": percentile(claim_latencies, 99),
        "create_p99": percentile(create_latencies, 99),
        "succeeded": page.get("total"),
        "completed": tally.succeeded,
    }


async def _baseline(url: str, count: int) -> dict[str, Any]:
    started = time.perf_counter()
    latencies = await _create_all([url], servers.token(OWNER), count)
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "per_s": count / elapsed, "p99": percentile(latencies, 99)}


def run(*, quick: bool, summary: Summary, count: int | None = None) -> None:
    count = count or (1000 if quick else 10_000)
    say(f"\n[e2e] {count} no-op jobs: {CREATORS} creators + {WORKERS} SDK workers, vs "
        f"{count} bare creates")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="jobtrail-bench-e2e-") as tmp:
        root = Path(tmp)
        (root / "base").mkdir()
        (root / "e2e").mkdir()
        with servers.jobtrail(root / "base" / "jobtrail.db") as server:
            base = asyncio.run(_baseline(f"http://127.0.0.1:{server.port}", count))
        with servers.jobtrail(root / "e2e" / "jobtrail.db") as server:
            e2e = asyncio.run(_end_to_end([f"http://127.0.0.1:{server.port}"], count, 600))
    correct = e2e["succeeded"] == count and e2e["completed"] == count
    rows = [
        ["bare POST /api/v1/jobs", rate(base["per_s"]), f"{base['seconds']:.1f}",
         "-", ms(base["p99"]), "-"],
        ["create+claim+succeed", rate(e2e["jobs_per_s"]), f"{e2e['seconds']:.1f}",
         ms(e2e["claim_p50"]), ms(e2e["claim_p99"]),
         f"{'ok' if correct else 'MISMATCH'} ({e2e['succeeded']}/{count})"],
    ]  # fmt: skip
    header = ["run", "jobs/s", "seconds", "claim p50 ms", "p99 ms", "succeeded = N"]
    say(table("(e) end to end over HTTP (server on CPU 0, clients on CPU 1)", header, rows))
    e2e_ratio = ratio(e2e["jobs_per_s"], base["per_s"])
    say(f"ratio end-to-end jobs/s / bare creates/s: {e2e_ratio}  (target >= 0.25)")
    summary.add("e2e_jobs_per_s", rate(e2e["jobs_per_s"]))
    summary.add("e2e_claim_p50_p99_ms", f"{ms(e2e['claim_p50'])} / {ms(e2e['claim_p99'])}")
    summary.add("e2e_baseline_creates_per_s", rate(base["per_s"]))
    summary.add("e2e_ratio_vs_baseline", f"{e2e_ratio} (target >= 0.25)")
    summary.add("e2e_succeeded_equals_n", "yes" if correct else "NO")


def run_postgres(*, quick: bool, summary: Summary, count: int | None = None) -> None:
    """The same end-to-end run on PostgreSQL with one and two instances (creators and workers
    spread evenly over them), SQLite with one instance beside; every server unpinned."""
    count = count or (1000 if quick else 10_000)
    say(f"\n[e2e, PostgreSQL] {count} no-op jobs: {CREATORS} creators + {WORKERS} SDK workers "
        "spread over the instances (clients on CPU 1, servers unpinned)")  # fmt: skip
    rows, rates = [], {}
    with tempfile.TemporaryDirectory(prefix="jobtrail-bench-e2e-pg-") as tmp:
        for setup in servers.SCALE_OUT:
            with (
                servers.deployment(setup, Path(tmp)) as where,
                servers.instances(where) as instances,
                watch.observe(instances, where) as window,
            ):
                urls = [f"http://127.0.0.1:{s.port}" for s in instances]
                e2e = asyncio.run(_end_to_end(urls, count, 600))
            correct = e2e["succeeded"] == count and e2e["completed"] == count
            rates[setup] = e2e["jobs_per_s"]
            verdict = f"{'ok' if correct else 'MISMATCH'} ({e2e['succeeded']}/{count})"
            claims = [ms(e2e["claim_p50"]), ms(e2e["claim_p99"])]
            rows.append(
                [
                    setup.label,
                    rate(e2e["jobs_per_s"]),
                    f"{e2e['seconds']:.1f}",
                    *claims,
                    *watch.cells(window, count),
                    verdict,
                ]
            )
            summary.add(
                f"e2e_jobs_per_s_{setup.backend}_x{setup.instances}",
                f"{rate(e2e['jobs_per_s'])} (claim p50/p99 {' / '.join(claims)} ms; {verdict})",
            )
    header = ["run", "jobs/s", "seconds", "claim p50 ms", "p99 ms", *watch.HEADER, "succeeded = N"]
    say(table("(e) end to end on one and two instances, SQLite beside", header, rows))
    say(watch.LEGEND)
    sqlite, one, two = (rates[s] for s in servers.SCALE_OUT)
    say(f"ratio e2e PostgreSQL x2 / x1:       {ratio(two, one)}")
    say(f"ratio e2e PostgreSQL x1 / SQLite x1: {ratio(one, sqlite)}")
    summary.add("e2e_ratio_pg_2_vs_1_instance", ratio(two, one))
    summary.add("e2e_ratio_pg_vs_sqlite", ratio(one, sqlite))
