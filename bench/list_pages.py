"""Part (b): a page of 20 from GET /api/v1/jobs at 1k and at 100k jobs, by offset and by
cursor, for a filtered sorted query and for a plain `sort=updated_at`.

Both databases are seeded in-process through the real writer (bench/seed.py); both servers
then run at once on CPU 0 and the client (this process, CPU 1, one keep-alive connection per
server) alternates between them, so machine noise hits both sizes alike.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import uvloop

from bench import query_plans, seed, servers
from bench.loadgen import Connection, build_request
from bench.report import Summary, ms, percentile, rate, ratio, say, table

CASES = {
    "filtered": "status=pending&type=report&sort=created_at&order=desc&limit=20",
    "updated_at": "sort=updated_at&order=desc&limit=20",
}
OFFSETS = tuple(range(0, 201, 20))
_MAX_PAGES = 20_000
_WALK_SECONDS = 120.0
_WARMUP = 30
_CHUNKS = f"events/s first / last {seed.CHUNK:,} jobs"


@dataclass
class Target:
    size: int
    port: int
    conn: Connection | None = None
    chains: dict[str, list[str | None]] = field(default_factory=dict)
    walk_ok: dict[str, str] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)


async def _fetch(target: Target, path: str, token: str) -> tuple[float, bytes]:
    assert target.conn is not None
    if target.conn.reader.at_eof():
        # uvicorn closes a keep-alive connection after 5 s idle: the other size's cursor walk
        # can take that long. Reconnect outside the timed part.
        await target.conn.close()
        target.conn = await Connection.open(target.port)
    started = time.perf_counter()
    status, body = await target.conn.request(build_request("GET", path, token=token))
    elapsed = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"GET {path} -> {status}: {body[:300]!r}")
    return elapsed, body


def _path(case: str, *, offset: int | None = None, cursor: str | None = None) -> str:
    path = f"/api/v1/jobs?{CASES[case]}"
    if offset is not None:
        path += f"&offset={offset}"
    if cursor is not None:
        path += f"&cursor={quote(cursor)}"
    return path


async def _walk(target: Target, case: str, token: str) -> None:
    """Follows the cursor chain to its end; checks no job repeats and the count is `total`."""
    chain: list[str | None] = [None]
    seen: set[str] = set()
    items = 0
    total = None
    deadline = time.monotonic() + _WALK_SECONDS
    while len(chain) <= _MAX_PAGES and time.monotonic() < deadline:
        _, body = await _fetch(target, _path(case, cursor=chain[-1]), token)
        page = json.loads(body)
        total = page["total"]
        items += len(page["items"])
        seen.update(item["id"] for item in page["items"])
        if page["next_cursor"] is None:
            break
        chain.append(page["next_cursor"])
    complete = items == len(seen) == total
    target.chains[case] = chain
    target.walk_ok[case] = f"{'ok' if complete else 'MISMATCH'} {items}/{total}"
    target.totals[case] = total or 0


async def _measure(
    targets: list[Target], token: str, n: int, rng: random.Random
) -> dict[tuple[str, str, int], list[float]]:
    for target in targets:
        target.conn = await Connection.open(target.port)
    samples: dict[tuple[str, str, int], list[float]] = {}
    try:
        for case in CASES:
            for target in targets:
                await _walk(target, case, token)
            for mode in ("offset", "cursor"):
                for i in range(_WARMUP + n):
                    for target in targets:
                        if mode == "offset":
                            path = _path(case, offset=OFFSETS[i % len(OFFSETS)])
                        else:
                            path = _path(case, cursor=rng.choice(target.chains[case]))
                        elapsed, _ = await _fetch(target, path, token)
                        if i >= _WARMUP:
                            samples.setdefault((case, mode, target.size), []).append(elapsed)
    finally:
        for target in targets:
            if target.conn is not None:
                await target.conn.close()
    return samples


def _seed_all(
    root: Path, sizes: tuple[int, ...], summary: Summary
) -> tuple[dict[int, Path], list[list[str]]]:
    dbs, rows = {}, []
    for size in sizes:
        (root / str(size)).mkdir()
        dbs[size] = root / str(size) / "jobtrail.db"
        stats = seed.seed_jobs(servers.settings_for(dbs[size]), size)
        rows.append(
            [
                f"{size:,} jobs",
                f"{stats.seconds:.1f}",
                rate(stats.events),
                rate(stats.events_per_s),
                f"{stats.avg_group:.0f}",
                f"{rate(stats.chunk_rates[0])} / {rate(stats.chunk_rates[-1])}",
                f"{dbs[size].stat().st_size / 2**20:.0f}",
            ]
        )
        say(f"  seeded {size:,} jobs: {stats.events:,} events at {stats.events_per_s:,.0f}/s")
        summary.add(
            f"seed_{size}_jobs_events_per_s",
            f"{rate(stats.events_per_s)} (first / last {seed.CHUNK:,} jobs: "
            f"{rate(stats.chunk_rates[0])} / {rate(stats.chunk_rates[-1])}; "
            f"group {stats.avg_group:.0f})",
        )
    return dbs, rows


def run(*, quick: bool, summary: Summary) -> None:
    small, large = 1_000, 10_000 if quick else 100_000
    n = 60 if quick else 300
    token = servers.token(seed.MEASURED_OWNER, ("jobs:read",))
    say(f"\n[list] seeding {small:,} and {large:,} jobs through the writer (in-process)")
    with tempfile.TemporaryDirectory(prefix="jobtrail-bench-list-") as tmp:
        dbs, seed_rows = _seed_all(Path(tmp), (small, large), summary)
        say(
            table(
                "(b) seeding through the group-commit writer (synchronous=FULL)",
                ["data set", "seconds", "events", "events/s", "avg group", _CHUNKS, "db MB"],
                seed_rows,
            )
        )
        with servers.jobtrail(dbs[small]) as s_small, servers.jobtrail(dbs[large]) as s_large:
            targets = [Target(small, s_small.port), Target(large, s_large.port)]
            samples = uvloop.run(_measure(targets, token, n, random.Random(11)))
        say(latency_table(samples, targets, n, summary, "list", "SQLite"))
        for case in CASES:
            matches = targets[0].totals[case]
            if matches < OFFSETS[-1] + 20:
                say(
                    f"note: at {small:,} jobs `{case}` matches {matches} jobs, so its pages at "
                    f"offsets >= {matches} are empty there (cheaper): its 100k/1k ratios "
                    "are pessimistic."
                )
        walks = [[case, *(t.walk_ok[case] for t in targets)] for case in CASES]
        say(table("(b) cursor walk: items seen / total", ["query", "1k", "large"], walks))
        summary.add("list_cursor_walk", "; ".join(" ".join(w) for w in walks))
        try:
            _plans(dbs, targets, n, summary)
        except Exception as exc:  # diagnostics only: the measurements above stand
            say(f"query plans unavailable: {type(exc).__name__}: {exc}")
            summary.add("list_plan_scans_or_temp_btrees", f"unavailable ({type(exc).__name__})")


def latency_table(
    samples: dict[tuple[str, str, int], list[float]],
    targets: list[Target],
    n: int,
    summary: Summary,
    key: str,
    backend: str,
) -> str:
    """The table of p50/p99 per case, paging mode and size; summary lines under `key`."""
    small, large = targets[0].size, targets[-1].size
    rows = []
    for case in CASES:
        for mode in ("offset", "cursor"):
            a, b = samples[case, mode, small], samples[case, mode, large]
            pages = (
                f"{OFFSETS[0]}..{OFFSETS[-1]}"
                if mode == "offset"
                else " / ".join(str(len(t.chains[case])) for t in targets)
            )
            r = ratio(percentile(b, 99), percentile(a, 99))
            r50 = ratio(percentile(b, 50), percentile(a, 50))
            low = [ms(percentile(a, 50)), ms(percentile(a, 99))]
            high = [ms(percentile(b, 50)), ms(percentile(b, 99))]
            rows.append([case, mode, pages, *low, *high, r, r50])
            summary.add(f"{key}_{case}_{mode}_p99_ms_{small}_vs_{large}", _pair(a, b))
            summary.add(f"{key}_{case}_{mode}_p99_ratio", f"{r} (p50 ratio {r50}) (target <= 1.5)")
    header = ["query", "paging", "offsets / pages", "p50@1k", "p99@1k"]
    header += [f"p50@{large // 1000}k", f"p99@{large // 1000}k", "p99 ratio", "p50 ratio"]
    title = f"(b) GET /api/v1/jobs on {backend}, limit 20, owner alice, {n} requests each"
    return table(title, header, rows)


def _pair(a: list[float], b: list[float]) -> str:
    return f"{ms(percentile(a, 99))} / {ms(percentile(b, 99))}"


def _plans(dbs: dict[int, Path], targets: list[Target], n: int, summary: Summary) -> None:
    """EXPLAIN QUERY PLAN on the large data set, and the cost of the SQL alone on both."""
    large = targets[-1]
    say(f"\n== (b) query plans on the {large.size:,}-job database (the service's own SQL)")
    rows, warnings = [], []
    for case in CASES:
        for label in ("offset 200", "cursor ~90% deep"):
            costs = []
            for target in targets:
                query_string = CASES[case] + _page_query(label, target.chains[case])
                db = dbs[target.size]
                if target is large:
                    plans = query_plans.explain(db, query_string, seed.MEASURED_OWNER)
                    say(query_plans.render(f"{case}, {label}", plans))
                    warnings += [f"{case} {label}: {w.strip()}" for p in plans for w in p.warnings]
                costs.append(query_plans.sql_cost(db, query_string, seed.MEASURED_OWNER, n))
            cells = [ms(q) for cost in costs for q in cost]
            ratios = [ratio(costs[-1][1], costs[0][1]), ratio(costs[-1][0], costs[0][0])]
            rows.append([case, label, *cells, *ratios])
    header = ["query", "page", "p50@1k", "p99@1k", "p50@large", "p99@large"]
    say(
        table(
            "(b) the same SQL without HTTP (sqlite3, in-process)",
            [*header, "p99 ratio", "p50 ratio"],
            rows,
        )
    )
    summary.add("list_sql_only_p50_ratios", ", ".join(f"{r[0]} {r[1]}: {r[-1]}" for r in rows))
    summary.add("list_plan_scans_or_temp_btrees", "; ".join(warnings) or "none")


def _page_query(label: str, chain: list[str | None]) -> str:
    if label.startswith("offset"):
        return "&offset=200"
    deep = chain[int(len(chain) * 0.9)]
    return "" if deep is None else f"&cursor={quote(deep)}"
