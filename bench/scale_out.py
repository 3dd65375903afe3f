"""Part (a) on PostgreSQL: creates and progress reports against one and two service instances
on one database, beside SQLite with one instance measured the same way, and where the writes
of several instances serialize.

Two instances are two `jobtrail serve` processes on one database, each on its own port; wrk
drives one URL per process, so one wrk per instance runs at the same time (32 connections in
all, split evenly), and their 2xx/s are summed. Instances and PostgreSQL are unpinned; wrk and
this process stay on CPU 1. Every write transaction of every instance takes the events table's
lock (`LOCK TABLE … IN EXCLUSIVE MODE`) first and holds it until its commit is durable: while
the runs are measured, a thread samples who holds it, in what state, and how many wait
(bench/pg.py), and /proc says where the CPU went (bench/cpu.py).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench import create, servers, watch, wrk
from bench.report import Summary, ms, rate, ratio, say, table
from bench.watch import observe, pct

CONNECTIONS = create.CONNECTIONS
# The durability trade, measured as one lever on the lock: the commit no longer waits for
# the WAL flush (a crash of the server can lose the last ~0.6 s of 2xx answers).
ASYNC_COMMIT = servers.Setup("postgres", 2, synchronous_commit="off")


def _total(port: int, query: str) -> Any:
    answer = httpx.get(
        f"http://127.0.0.1:{port}/api/v1/jobs?{query}",
        headers={"Authorization": f"Bearer {servers.token(create.OWNER)}"},
        timeout=30,
    )
    answer.raise_for_status()
    return answer.json()


def _measure(
    label: str,
    instances: list[servers.Server],
    where: servers.Deployment,
    requests: list[list[wrk.Request]],
    warmup: float,
    duration: float,
) -> tuple[dict[str, Any], int]:
    ports = [s.port for s in instances]
    warm = wrk.run_many(ports, requests, connections=CONNECTIONS, seconds=warmup)
    with observe(instances, where) as window:
        run = wrk.run_many(ports, requests, connections=CONNECTIONS, seconds=duration)
    answered = (warm.requests - warm.non_2xx) + (run.requests - run.non_2xx)
    return {"label": label, "run": run, "window": window}, answered


def _deployment(
    setup: servers.Setup, root: Path, warmup: float, duration: float
) -> list[dict[str, Any]]:
    """Creates, then progress reports, on a fresh database served by `setup.instances`."""
    n = setup.instances
    with servers.deployment(setup, root) as where, servers.instances(where) as instances:
        token = servers.token(create.OWNER)
        creates, answered = _measure(
            f"create, {setup.label}",
            instances,
            where,
            [create.create_requests(token)] * n,
            warmup,
            duration,
        )
        stored = _total(instances[0].port, "limit=1")["total"]
        creates.update(
            correct=create._accounted(answered, stored), stored=stored, answered=answered
        )
        base = f"http://127.0.0.1:{instances[0].port}/api/v1"
        with httpx.Client(base_url=base, timeout=30) as client:
            everyone = create.progress_requests(client)
        progress, answered = _measure(
            f"progress, {setup.label}",
            instances,
            where,
            [everyone[i::n] for i in range(n)],
            warmup,
            duration,
        )
        page = _total(instances[0].port, "type=bench.progress&limit=100")
        recorded = sum(job["version"] for job in page["items"]) - 2 * CONNECTIONS
        progress.update(correct=create._accounted(answered, recorded), stored=recorded,
                        answered=answered)  # fmt: skip
    return [creates, progress]


def _row(r: dict[str, Any]) -> list[str]:
    run: wrk.Result = r["run"]
    return [
        r["label"],
        rate(run.ok_per_s),
        ms(run.p50_s),
        ms(run.p99_s),
        str(run.non_2xx + run.socket_errors),
        *watch.cells(r["window"], run.requests - run.non_2xx),
        f"{'ok' if r['correct'] else 'MISMATCH'} ({r['answered']}/{r['stored']})",
    ]


_HEADER = ["run", "2xx/s", "p50 ms", "p99 ms", "errors", *watch.HEADER, "2xx/stored"]


def run(*, quick: bool, summary: Summary) -> None:
    warmup, duration = (1.0, 3.0) if quick else (2.0, 10.0)
    wrk.ensure()
    say(
        f"\n[create, PostgreSQL] wrk -t1, {CONNECTIONS} connections split over the instances (one"
        f" wrk each, at once, on CPU {servers.CLIENT_CPU}), {warmup:.0f} s warm-up +"
        f" {duration:.0f} s measured; instances and PostgreSQL unpinned"
    )
    results: dict[servers.Setup, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="jobtrail-bench-scale-") as tmp:
        for setup in (*servers.SCALE_OUT, ASYNC_COMMIT):
            results[setup] = _deployment(setup, Path(tmp), warmup, duration)
    rows = [_row(r) for runs in results.values() for r in runs]
    say(
        table(
            "(a) writes on one and two instances, SQLite beside (wrk per instance)", _HEADER, rows
        )
    )
    say(watch.LEGEND)
    _ratios(results, summary)


def _ratios(results: dict[servers.Setup, list[dict[str, Any]]], summary: Summary) -> None:
    sqlite, one, two = (results[s] for s in servers.SCALE_OUT)
    for n, kind in enumerate(("create", "progress")):
        scale = ratio(two[n]["run"].ok_per_s, one[n]["run"].ok_per_s)
        versus = ratio(one[n]["run"].ok_per_s, sqlite[n]["run"].ok_per_s)
        say(f"ratio {kind} PostgreSQL x2 / x1:       {scale}  (target >= 1.5)")
        say(f"ratio {kind} PostgreSQL x1 / SQLite x1: {versus}")
        summary.add(f"pg_{kind}_per_s_sqlite_x1_pg_x1_x2", " / ".join(
            rate(r[n]["run"].ok_per_s) for r in (sqlite, one, two)))  # fmt: skip
        summary.add(f"pg_{kind}_ratio_2_vs_1_instance", f"{scale} (target >= 1.5)")
        summary.add(f"pg_{kind}_ratio_pg_vs_sqlite", versus)
    for setup in (servers.SCALE_OUT[1], servers.SCALE_OUT[2], ASYNC_COMMIT):
        r = results[setup][0]
        lock, w, ok_per_s = r["window"].lock, r["window"], r["run"].ok_per_s
        if lock is None or not lock.held:
            continue
        ceiling = ok_per_s / lock.held
        key = f"pg_create_lock_{setup.instances}x" + ("_async" if setup.synchronous_commit else "")
        summary.add(
            key,
            f"held {pct(lock.held)} % (client {pct(lock.held_by_client)} %, PG "
            f"{pct(lock.held_in_postgres)} %, WAL {pct(lock.held_in_commit)} %), "
            f"{lock.mean_waiters:.2f} waiting, group {w.commands / max(w.groups, 1):.1f}; "
            f"ceiling through the one lock holder ~{rate(ceiling)} creates/s",
        )
        say(
            f"{r['label']}: lock held {pct(lock.held)} % of the time at {rate(ok_per_s)} "
            f"creates/s -> at most ~{rate(ceiling)} creates/s through the one lock holder at this"
            " group size"
        )
    async_ratio = ratio(results[ASYNC_COMMIT][0]["run"].ok_per_s, two[0]["run"].ok_per_s)
    say(f"ratio create PostgreSQL x2, synchronous_commit=off / on: {async_ratio}")
    summary.add("pg_create_ratio_async_commit_vs_durable_x2", async_ratio)
    every = all(r["correct"] for runs in results.values() for r in runs)
    summary.add("pg_writes_2xx_all_stored", "yes" if every else "NO")
