"""Part (a): job creation over HTTP, 32 keep-alive clients, jobtrail vs a bare baseline.

Each server runs alone on CPU 0 (a subprocess of the real CLI, or uvicorn for the baseline);
the load generator is another process on CPU 1. After each run the service's own total
(GET /api/v1/jobs?limit=1) must equal the number of 201 responses the clients saw.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import uvloop

from bench import servers
from bench.loadgen import Connection, build_request
from bench.report import Summary, ms, rate, ratio, say, table

BODY = json.dumps(
    {"type": "bench.create", "name": "bench job", "priority": "normal", "payload": {"n": 1}},
    separators=(",", ":"),
)
OWNER = "bench-create"


async def _get(port: int, path: str, token: str | None) -> tuple[int, Any]:
    conn = await Connection.open(port)
    try:
        return await conn.get_json(path, token)
    finally:
        await conn.close()


async def _get_text(port: int, path: str) -> str:
    conn = await Connection.open(port)
    try:
        _, body = await conn.request(build_request("GET", path))
        return body.decode()
    finally:
        await conn.close()


def _group_size(port: int) -> float:
    """Average commands per writer commit, from the service's /metrics."""
    text = uvloop.run(_get_text(port, "/metrics"))
    values = {}
    for line in text.splitlines():
        if line.startswith("jobtrail_writer_group_commands_"):
            name, _, value = line.partition(" ")
            values[name] = float(value)
    count = values.get("jobtrail_writer_group_commands_count", 0.0)
    return values.get("jobtrail_writer_group_commands_sum", 0.0) / count if count else 0.0


def _measure(
    label: str,
    start: Callable[[], AbstractContextManager[servers.Server]],
    token: str | None,
    warmup: float,
    duration: float,
) -> dict[str, Any]:
    with start() as server:
        cpu_before, wall_before = server.cpu_seconds(), time.perf_counter()
        result: dict[str, Any] = json.loads(
            servers.loadgen(server.port, token=token, body=BODY, warmup=warmup, duration=duration)
        )
        cpu = server.cpu_seconds() - cpu_before
        wall = time.perf_counter() - wall_before
        status, page = uvloop.run(_get(server.port, "/api/v1/jobs?limit=1", token))
        result["group"] = _group_size(server.port) if token is not None else None
    requests = sum(result["statuses"].values())
    created = result["statuses"].get("201", 0)
    total = page.get("total") if status == 200 and isinstance(page, dict) else None
    result.update(
        label=label,
        created=created,
        stored=total,
        correct=total == created,
        server_cpu_pct=100 * cpu / wall,
        cpu_us_per_request=1e6 * cpu / requests if requests else float("nan"),
    )
    return result


def _row(r: dict[str, Any]) -> list[Any]:
    non_2xx = {s: n for s, n in r["statuses"].items() if not s.startswith("2")}
    problems = ", ".join(f"{s}x{n}" for s, n in {**non_2xx, **r["errors"]}.items()) or "0"
    return [
        r["label"],
        rate(r["ok_per_s"]),
        ms(r["p50_s"]),
        ms(r["p99_s"]),
        ms(r["max_s"]),
        problems,
        f"{r['server_cpu_pct']:.0f}",
        f"{r['cpu_us_per_request']:.0f}",
        f"{r['client_cpu_pct']:.0f}",
        "-" if r["group"] is None else f"{r['group']:.1f}",
        f"{'ok' if r['correct'] else 'MISMATCH'} ({r['created']}/{r['stored']})",
    ]


def run(*, quick: bool, summary: Summary) -> None:
    warmup, duration = (1.0, 3.0) if quick else (2.0, 10.0)
    token = servers.token(OWNER)
    say(f"\n[create] 32 connections, {warmup:.0f} s warm-up + {duration:.0f} s measured per server")
    with tempfile.TemporaryDirectory(prefix="jobtrail-bench-create-") as tmp:
        root = Path(tmp)
        for name in ("full", "baseline", "normal"):
            (root / name).mkdir()
        runs = [
            _measure(
                "jobtrail (synchronous=FULL)",
                lambda: servers.jobtrail(root / "full" / "jobtrail.db", synchronous="FULL"),
                token,
                warmup,
                duration,
            ),
            _measure(
                "baseline (aiosqlite, NORMAL)",
                lambda: servers.baseline(root / "baseline" / "baseline.db"),
                None,
                warmup,
                duration,
            ),
            _measure(
                "jobtrail (synchronous=NORMAL)",
                lambda: servers.jobtrail(root / "normal" / "jobtrail.db", synchronous="NORMAL"),
                token,
                warmup,
                duration,
            ),
        ]
    full, base, normal = runs
    header = ["server", "2xx/s", "p50 ms", "p99 ms", "max ms", "non-2xx/errors"]
    header += ["srv CPU %", "srv CPU us/req", "client CPU %", "avg group", "201s = total"]
    say(table("(a) POST /api/v1/jobs, 32 connections", header, [_row(r) for r in runs]))
    full_ratio = ratio(full["ok_per_s"], base["ok_per_s"])
    normal_ratio = ratio(normal["ok_per_s"], base["ok_per_s"])
    say(f"ratio jobtrail FULL / baseline:   {full_ratio}  (target >= 0.6)")
    say(f"ratio jobtrail NORMAL / baseline: {normal_ratio}")
    summary.add("create_jobs_per_s_full", rate(full["ok_per_s"]))
    summary.add("create_p50_p99_ms_full", f"{ms(full['p50_s'])} / {ms(full['p99_s'])}")
    summary.add("create_jobs_per_s_normal", rate(normal["ok_per_s"]))
    summary.add("create_p50_p99_ms_normal", f"{ms(normal['p50_s'])} / {ms(normal['p99_s'])}")
    summary.add("create_baseline_per_s", rate(base["ok_per_s"]))
    summary.add("create_baseline_p50_p99_ms", f"{ms(base['p50_s'])} / {ms(base['p99_s'])}")
    summary.add("create_ratio_full_vs_baseline", f"{full_ratio} (target >= 0.6)")
    summary.add("create_ratio_normal_vs_baseline", normal_ratio)
    summary.add("create_writer_avg_group_full", f"{full['group']:.1f}")
    summary.add("create_201s_equal_total", "yes" if all(r["correct"] for r in runs) else "NO")
    errors = sum(
        n for r in runs for s, n in {**r["statuses"], **r["errors"]}.items() if s[:1] != "2"
    )
    summary.add("create_non_2xx_or_errors", errors)
