"""Part (c): a job with 100k progress events vs one with 10.

(c1) GET /api/v1/jobs/{id} (and ?include=logs, ?as_of=<head-5>) over HTTP, alternating the
two jobs on one keep-alive connection. (c2) after a restart of the writer (new EventStore +
Writer, empty cache), the cost of appending one more progress event to each job: the first
append, every append with the cache off (each loads snapshot + tail), with the cache on, and a
bare `store.load`.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop

from bench import query_plans, seed, servers
from bench.loadgen import Connection, build_request
from bench.report import Summary, ms, percentile, rate, ratio, say, table
from projections import feed, jobs_view
from service.settings import Settings
from service.store import backends

_WARMUP = 30
_RESTARTS = 10


async def _gets(
    port: int, token: str, jobs: dict[str, uuid.UUID], versions: dict[str, int], n: int
) -> dict[tuple[str, str], list[float]]:
    variants: dict[str, Callable[[str], str]] = {
        "GET": lambda _: "",
        "GET ?include=logs": lambda _: "?include=logs",
        "GET ?as_of=head-5": lambda name: f"?as_of={versions[name] - 5}",
    }
    samples: dict[tuple[str, str], list[float]] = {}
    conn = await Connection.open(port)
    try:
        for variant, query in variants.items():
            for i in range(_WARMUP + n):
                for name, job_id in jobs.items():
                    raw = build_request("GET", f"/api/v1/jobs/{job_id}{query(name)}", token=token)
                    started = time.perf_counter()
                    status, body = await conn.request(raw)
                    elapsed = time.perf_counter() - started
                    if status != 200:
                        raise RuntimeError(f"GET job -> {status}: {body[:300]!r}")
                    if i == 0 and variant == "GET":
                        got = json.loads(body)["version"]
                        if got != versions[name]:
                            raise RuntimeError(f"{name}: version {got}, expected {versions[name]}")
                    if i >= _WARMUP:
                        samples.setdefault((variant, name), []).append(elapsed)
    finally:
        await conn.close()
    return samples


def _append_once(writer: Any, job_id: uuid.UUID) -> float:
    started = time.perf_counter()
    writer.call(seed.progress(job_id, 50.0))
    return time.perf_counter() - started


def _appends(
    settings: Settings, jobs: dict[str, uuid.UUID], primer: uuid.UUID, n: int
) -> dict[str, dict[str, list[float]]]:
    """First append after each of `_RESTARTS` restarts (a new store and writer: empty cache),
    `n` appends with the cache on, `n` with the cache off (each loads snapshot + tail), and
    `n` bare loads; alternating the jobs."""
    out: dict[str, dict[str, list[float]]] = {name: {} for name in jobs}

    def record(operation: str, name: str, seconds: float) -> None:
        out[name].setdefault(operation, []).append(seconds)

    for _ in range(_RESTARTS):
        with seed.writer_on(settings) as writer:
            _append_once(writer, primer)  # first-use costs (connections, statements) go here
            for name, job_id in jobs.items():
                record("first append after restart", name, _append_once(writer, job_id))
            for _ in range(n // _RESTARTS):
                for name, job_id in jobs.items():
                    record("append, cache on", name, _append_once(writer, job_id))
    with seed.writer_on(settings, cache_size=0) as writer:
        _append_once(writer, primer)
        for _ in range(n):
            for name, job_id in jobs.items():
                record("append, cache off", name, _append_once(writer, job_id))
    store = backends.open_store(settings)
    try:
        store.load(primer)
        for _ in range(n):
            for name, job_id in jobs.items():
                started = time.perf_counter()
                store.load(job_id)
                record("store.load (no write)", name, time.perf_counter() - started)
    finally:
        store.close()
    return out


def _snapshots(db: Path, job_id: uuid.UUID) -> str:
    """How many snapshots the job has, and how far apart they are (in events)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT originator_version FROM stored_snapshots WHERE originator_id = ? "
            "ORDER BY originator_version",
            (job_id.hex,),
        ).fetchall()
    finally:
        conn.close()
    versions = [row[0] for row in rows]
    gaps = [b - a for a, b in itertools.pairwise(versions)]
    if not gaps:
        return f"{len(versions)}"
    return (
        f"{len(versions)}, newest at v{versions[-1]}, gap between snapshots "
        f"median {percentile(gaps, 50):.0f} / max {max(gaps)} events"
    )


def _plans(db: Path, job_id: uuid.UUID) -> str:
    """The plans of the read-model queries behind GET and GET ?include=logs (diagnostic)."""
    try:
        get = query_plans.explain_call(
            db, lambda c: jobs_view.get(c, str(job_id), seed.MEASURED_OWNER)
        )
        logs = query_plans.explain_call(db, lambda c: feed.recent_logs(c, str(job_id), up_to=2**62))
    except Exception as exc:  # the service's query functions changed: report, go on
        return f"(query plans unavailable: {type(exc).__name__}: {exc})"
    return "\n".join(
        [
            query_plans.render("GET /api/v1/jobs/{id}", get),
            query_plans.render("GET ?include=logs (recent log lines)", logs),
        ]
    )


def _row(label: str, a: list[float], b: list[float]) -> list[str]:
    return [label, *_p50_p99(a), *_p50_p99(b), *_ratios(a, b)]


def _ratios(a: list[float], b: list[float]) -> list[str]:
    """p99 and p50 of `b` over those of `a`."""
    return [ratio(percentile(b, q), percentile(a, q)) for q in (99, 50)]


def _p50_p99(samples: list[float]) -> list[str]:
    return [ms(percentile(samples, 50)), ms(percentile(samples, 99))]


def run(*, quick: bool, summary: Summary) -> None:
    long_events = 10_000 if quick else 100_000
    n = 60 if quick else 300
    n_appends = 50 if quick else 200
    token = servers.token(seed.MEASURED_OWNER, ("jobs:read",))
    say(f"\n[load] seeding a job with {long_events:,} events and one with 10 (in-process)")
    with tempfile.TemporaryDirectory(prefix="jobtrail-bench-load-") as tmp:
        db = Path(tmp) / "jobtrail.db"
        settings = servers.settings_for(db)
        streams = seed.seed_streams(settings, long_events)
        stats = streams.stats
        say(
            f"  {stats.events:,} progress events in {stats.seconds:.1f} s: "
            f"{stats.events_per_s:,.0f} events/s, {stats.avg_group:.0f} per commit"
        )
        jobs = {"10 events": streams.short, f"{long_events // 1000}k events": streams.long}
        short, long = jobs
        versions = {short: 10, long: long_events}
        with servers.jobtrail(db) as server:
            gets = uvloop.run(_gets(server.port, token, jobs, versions, n))
        appends = _appends(settings, jobs, streams.primer, n_appends)
        snapshots = _snapshots(db, streams.long)
        plans = _plans(db, streams.long)
    header = ["operation", f"p50 {short}", f"p99 {short}", f"p50 {long}", f"p99 {long}"]
    header += ["p99 ratio", "p50 ratio"]
    variants = list(dict.fromkeys(v for v, _ in gets))
    rows = [_row(v, gets[v, short], gets[v, long]) for v in variants]
    say(table(f"(c1) GET a job over HTTP, {n} requests each", header, rows))
    rows = [_row(op, appends[short][op], appends[long][op]) for op in appends[short]]
    title = (
        f"(c2) one more progress event through the writer ({_RESTARTS} restarts, {n_appends} each)"
    )
    say(table(title, header, rows))
    say(f"snapshots of the {long} job: {snapshots}")
    say(plans)
    summary.add(
        "seed_progress_events_per_s", f"{rate(stats.events_per_s)} (group {stats.avg_group:.0f})"
    )
    size = long.split()[0]
    cases = [
        ("get", gets["GET", short], gets["GET", long], " (target <= 1.5)"),
        ("get_as_of", gets["GET ?as_of=head-5", short], gets["GET ?as_of=head-5", long], ""),
    ]
    for operation, key in (
        ("first append after restart", "append_first"),
        ("append, cache off", "append_cold"),
        ("append, cache on", "append_warm"),
    ):
        cases.append((key, appends[short][operation], appends[long][operation], ""))
    for key, a, b, target in cases:
        summary.add(f"{key}_p50_p99_ms_10", " / ".join(_p50_p99(a)))
        summary.add(f"{key}_p50_p99_ms_{size}", " / ".join(_p50_p99(b)))
        p99, p50 = _ratios(a, b)
        summary.add(f"{key}_p99_ratio", f"{p99} (p50 ratio {p50}){target}")
