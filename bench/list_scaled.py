"""Part (b) on PostgreSQL: a page of 20 at 1k and at 100k jobs (latency, as on SQLite), then
the throughput of one page at 100k with one and two instances, SQLite with one beside.

Each data set is seeded in-process through the real writer (bench/seed.py) into a database of
its own. Latency: one instance per data set, one keep-alive connection each, requests
alternating between them (bench/list_pages.py). Throughput: wrk on the `filtered` page
(32 connections; with two instances one wrk each, at once, summed), servers unpinned.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import tempfile
from pathlib import Path

import uvloop

from bench import list_pages, seed, servers, watch, wrk
from bench.report import Summary, ms, rate, ratio, say, table

CONNECTIONS = 32


def _seed(where: servers.Deployment, size: int, summary: Summary) -> list[str]:
    stats = seed.seed_jobs(where.settings(), size)
    label = f"{where.setup.label}, {size:,} jobs"
    say(f"  seeded {label}: {stats.events:,} events at {stats.events_per_s:,.0f}/s")
    key = f"seed_{where.setup.backend}_{size}_jobs_events_per_s"
    summary.add(key, f"{rate(stats.events_per_s)} (group {stats.avg_group:.0f})")
    return [label, f"{stats.seconds:.1f}", rate(stats.events), rate(stats.events_per_s),
            f"{stats.avg_group:.0f}"]  # fmt: skip


def _throughput(
    where: servers.Deployment, warmup: float, duration: float
) -> tuple[wrk.Result, watch.Window]:
    token = servers.token(seed.MEASURED_OWNER, ("jobs:read",))
    path = f"/api/v1/jobs?{list_pages.CASES['filtered']}"
    request = wrk.Request(method="GET", path=path, headers={"Authorization": f"Bearer {token}"})
    with servers.instances(where) as instances:
        ports = [s.port for s in instances]
        every = [[request]] * len(ports)
        wrk.run_many(ports, every, connections=CONNECTIONS, seconds=warmup)
        with watch.observe(instances, where) as window:
            run = wrk.run_many(ports, every, connections=CONNECTIONS, seconds=duration)
    return run, window


def run_postgres(*, quick: bool, summary: Summary) -> None:
    small, large = 1_000, 10_000 if quick else 100_000
    n = 60 if quick else 300
    warmup, duration = (1.0, 3.0) if quick else (2.0, 10.0)
    token = servers.token(seed.MEASURED_OWNER, ("jobs:read",))
    one, two = servers.SCALE_OUT[1], servers.SCALE_OUT[2]
    say(f"\n[list, PostgreSQL] seeding {small:,} and {large:,} jobs through the writer, and "
        f"{large:,} on SQLite for the throughput beside")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="jobtrail-bench-list-pg-") as tmp:
        with contextlib.ExitStack() as stack:
            wheres = {
                size: stack.enter_context(servers.deployment(one, Path(tmp)))
                for size in (small, large)
            }
            on_sqlite = stack.enter_context(servers.deployment(servers.SCALE_OUT[0], Path(tmp)))
            seeded = [_seed(wheres[size], size, summary) for size in (small, large)]
            seeded.append(_seed(on_sqlite, large, summary))
            header = ["data set", "seconds", "events", "events/s", "avg group"]
            say(table("(b) seeding through the group-commit writer", header, seeded))
            with (
                servers.instances(wheres[small]) as (s_small,),
                servers.instances(wheres[large]) as (s_large,),
            ):
                targets = [list_pages.Target(small, s_small.port),
                           list_pages.Target(large, s_large.port)]  # fmt: skip
                samples = uvloop.run(list_pages._measure(targets, token, n, random.Random(11)))
            say(list_pages.latency_table(samples, targets, n, summary, "list_pg", "PostgreSQL"))
            walks = [[case, *(t.walk_ok[case] for t in targets)] for case in list_pages.CASES]
            say(table("(b) cursor walk on PostgreSQL", ["query", "1k", "large"], walks))
            summary.add("list_pg_cursor_walk", "; ".join(" ".join(w) for w in walks))
            runs = {
                setup.label: _throughput(where, warmup, duration)
                for setup, where in (
                    (servers.SCALE_OUT[0], on_sqlite),
                    (one, wheres[large]),
                    (two, dataclasses.replace(wheres[large], setup=two)),
                )
            }
    rows = [
        [label, rate(r.ok_per_s), ms(r.p50_s), ms(r.p99_s), str(r.non_2xx + r.socket_errors),
         *watch.cells(w, r.requests - r.non_2xx)]
        for label, (r, w) in runs.items()
    ]  # fmt: skip
    header = ["server", "2xx/s", "p50 ms", "p99 ms", "errors", *watch.HEADER]
    title = f"(b) GET the `filtered` page at {large:,} jobs, {CONNECTIONS} connections (wrk)"
    say(table(title, header, rows))
    sqlite_rate, one_rate, two_rate = (r.ok_per_s for r, _ in runs.values())
    say(f"ratio list page PostgreSQL x2 / x1:       {ratio(two_rate, one_rate)}")
    say(f"ratio list page PostgreSQL x1 / SQLite x1: {ratio(one_rate, sqlite_rate)}")
    summary.add("list_page_per_s_sqlite_x1_pg_x1_x2",
                " / ".join(rate(v) for v in (sqlite_rate, one_rate, two_rate)))  # fmt: skip
    summary.add("list_page_ratio_pg_2_vs_1_instance", ratio(two_rate, one_rate))
    summary.add("list_page_ratio_pg_vs_sqlite", ratio(one_rate, sqlite_rate))
