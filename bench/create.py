"""Part (a): the write path over HTTP, driven by wrk (a C load generator) from CPU 1.

Creates (POST /api/v1/jobs) against jobtrail with the durable default (synchronous=FULL), the
bare baseline (bench/baseline_app.py) and jobtrail with NORMAL; then progress reports
(POST /api/v1/jobs/{id}/progress) on 32 running jobs, one per connection, against jobtrail FULL.
Each server runs alone on CPU 0. After each create run the service's own total must equal the
number of 2xx answers wrk counted; after the progress run, the jobs' versions must account for
every 2xx.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench import servers, wrk
from bench.report import Summary, ms, rate, ratio, say, table

BODY = json.dumps(
    {"type": "bench.create", "name": "bench job", "priority": "normal", "payload": {"n": 1}},
    separators=(",", ":"),
)
PROGRESS = json.dumps({"percent": 42.5, "stage": "working", "completed": 17}, separators=(",", ":"))
OWNER = "bench-create"
CONNECTIONS = 32


def _group_size(port: int) -> float:
    """Average commands per writer commit, from the service's /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    values = {}
    for line in text.splitlines():
        if line.startswith("jobtrail_writer_group_commands_"):
            name, _, value = line.partition(" ")
            values[name] = float(value)
    count = values.get("jobtrail_writer_group_commands_count", 0.0)
    return values.get("jobtrail_writer_group_commands_sum", 0.0) / count if count else 0.0


@contextmanager
def _measured(server: servers.Server) -> Iterator[dict[str, float]]:
    """The server's CPU seconds and the wall time spent inside the block."""
    spent: dict[str, float] = {}
    cpu, wall = server.cpu_seconds(), time.perf_counter()
    yield spent
    spent["cpu"] = server.cpu_seconds() - cpu
    spent["wall"] = time.perf_counter() - wall


def _result(label: str, run: wrk.Result, spent: dict[str, float], **extra: Any) -> dict[str, Any]:
    return {
        "label": label,
        "ok_per_s": run.ok_per_s,
        "p50_s": run.p50_s,
        "p99_s": run.p99_s,
        "max_s": run.max_s,
        "problems": run.non_2xx + run.socket_errors,
        "ok": run.requests - run.non_2xx,
        "server_cpu_pct": 100 * spent["cpu"] / spent["wall"],
        "cpu_us_per_request": 1e6 * spent["cpu"] / run.requests if run.requests else float("nan"),
        **extra,
    }


def _creates(
    label: str,
    start: Callable[[], AbstractContextManager[servers.Server]],
    token: str | None,
    warmup: float,
    duration: float,
) -> dict[str, Any]:
    requests = create_requests(token)
    with start() as server:
        warm = wrk.run(server.port, requests, connections=CONNECTIONS, seconds=warmup)
        with _measured(server) as spent:
            run = wrk.run(server.port, requests, connections=CONNECTIONS, seconds=duration)
        answer = httpx.get(
            f"http://127.0.0.1:{server.port}/api/v1/jobs?limit=1",
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=30,
        )
        stored = answer.json().get("total") if answer.status_code == 200 else None
        group = _group_size(server.port) if token is not None else None
    created = (warm.requests - warm.non_2xx) + (run.requests - run.non_2xx)
    return _result(label, run, spent, group=group, correct=_accounted(created, stored),
                   stored=stored, created=created)  # fmt: skip


def create_requests(token: str | None) -> list[wrk.Request]:
    """The create request (with the owner's token; none for the baseline)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return [wrk.Request(method="POST", path="/api/v1/jobs", headers=headers, body=BODY)]


def progress_requests(client: httpx.Client) -> list[wrk.Request]:
    """One progress request per connection, each on its own running job claimed with a long
    lease (through `client`, on the server's /api/v1)."""
    as_owner = {"Authorization": f"Bearer {servers.token(OWNER)}"}
    as_worker = {"Authorization": f"Bearer {servers.token('bench-worker', ('worker',))}"}
    leased = []
    for n in range(CONNECTIONS):
        client.post("/jobs", json={"type": "bench.progress", "payload": {"n": n}},
                    headers=as_owner).raise_for_status()  # fmt: skip
        claim = client.post(
            "/workers/claim",
            json={"types": ["bench.progress"], "worker_id": "bench", "lease_seconds": 3600},
            headers=as_worker,
        )
        claim.raise_for_status()
        leased.append((claim.json()["job"]["id"], claim.json()["lease"]["token"]))
    return [
        wrk.Request(
            method="POST",
            path=f"/api/v1/jobs/{job_id}/progress",
            headers={**as_worker, "Job-Lease": lease, "Content-Type": "application/json"},
            body=PROGRESS,
        )
        for job_id, lease in leased
    ]


def _progress(db: Path, warmup: float, duration: float) -> dict[str, Any]:
    """Progress reports on CONNECTIONS running jobs, each claimed with a long lease."""
    as_owner = {"Authorization": f"Bearer {servers.token(OWNER)}"}
    with servers.jobtrail(db, synchronous="FULL") as server:
        base = f"http://127.0.0.1:{server.port}/api/v1"
        with httpx.Client(base_url=base, timeout=30) as client:
            requests = progress_requests(client)
            warm = wrk.run(server.port, requests, connections=CONNECTIONS, seconds=warmup)
            with _measured(server) as spent:
                run = wrk.run(server.port, requests, connections=CONNECTIONS, seconds=duration)
            # Each job has `created`, `started`, then one event per accepted report.
            page = client.get("/jobs?type=bench.progress&limit=100", headers=as_owner).json()
            versions = sum(job["version"] for job in page["items"])
        group = _group_size(server.port)
    reports = (warm.requests - warm.non_2xx) + (run.requests - run.non_2xx)
    recorded = versions - 2 * CONNECTIONS
    return _result("jobtrail progress (FULL)", run, spent, group=group,
                   correct=_accounted(reports, recorded), stored=recorded,
                   created=reports)  # fmt: skip


def _reads(n: int, db: Path, warmup: float, duration: float) -> dict[str, Any]:
    """GET of one job over 32 connections, from `n` server processes (unpinned): what more
    processes buy where nothing has to take the database's one write lock."""
    token = servers.token(OWNER)
    with servers.jobtrail(db, workers=n, pinned=False) as server:
        job = httpx.post(
            f"http://127.0.0.1:{server.port}/api/v1/jobs",
            json={"type": "bench.read"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).json()
        path = f"/api/v1/jobs/{job['id']}"
        auth = {"Authorization": f"Bearer {token}"}
        requests = [wrk.Request(method="GET", path=path, headers=auth, body="")]
        wrk.run(server.port, requests, connections=CONNECTIONS, seconds=warmup)
        with _measured(server) as spent:
            run = wrk.run(server.port, requests, connections=CONNECTIONS, seconds=duration)
    label = f"jobtrail GET a job, {n} process{'es' if n > 1 else ''}, unpinned"
    answered = run.requests - run.non_2xx
    return _result(label, run, spent, group=None, correct=run.non_2xx == 0,
                   stored=answered, created=answered)  # fmt: skip


def _accounted(answered: int, stored: int | None) -> bool:
    """Every 2xx wrk counted is stored; beyond them, at most the requests in flight when each of
    its two runs (warm-up, measured) stopped, which the server finished but wrk did not count."""
    return stored is not None and answered <= stored <= answered + 2 * CONNECTIONS


def _row(r: dict[str, Any]) -> list[Any]:
    return [
        r["label"],
        rate(r["ok_per_s"]),
        ms(r["p50_s"]),
        ms(r["p99_s"]),
        ms(r["max_s"]),
        r["problems"],
        f"{r['server_cpu_pct']:.0f}",
        f"{r['cpu_us_per_request']:.0f}",
        "-" if r["group"] is None else f"{r['group']:.1f}",
        f"{'ok' if r['correct'] else 'MISMATCH'} ({r['created']}/{r['stored']})",
    ]


def run(*, quick: bool, summary: Summary) -> None:
    warmup, duration = (1.0, 3.0) if quick else (2.0, 10.0)
    wrk.ensure()
    token = servers.token(OWNER)
    say(
        f"\n[create] wrk -t1 -c{CONNECTIONS} on CPU {servers.CLIENT_CPU}, {warmup:.0f} s warm-up"
        f" + {duration:.0f} s measured per server"
    )
    with tempfile.TemporaryDirectory(prefix="jobtrail-bench-create-") as tmp:
        root = Path(tmp)
        for name in ("full", "baseline", "normal", "progress", "one", "two", "r1", "r2"):
            (root / name).mkdir()
        full = _creates(
            "jobtrail create (FULL)",
            lambda: servers.jobtrail(root / "full" / "jobtrail.db", synchronous="FULL"),
            token,
            warmup,
            duration,
        )
        base = _creates(
            "baseline create (aiosqlite, NORMAL)",
            lambda: servers.baseline(root / "baseline" / "baseline.db"),
            None,
            warmup,
            duration,
        )
        normal = _creates(
            "jobtrail create (NORMAL)",
            lambda: servers.jobtrail(root / "normal" / "jobtrail.db", synchronous="NORMAL"),
            token,
            warmup,
            duration,
        )
        progress = _progress(root / "progress" / "jobtrail.db", warmup, duration)
        # Across cores: `serve --workers N`, the server unpinned (wrk stays on CPU 1).
        one, two = (
            _creates(
                f"jobtrail create (FULL), {n} process{'es' if n > 1 else ''}, unpinned",
                lambda n=n, name=name: servers.jobtrail(
                    root / name / "jobtrail.db", workers=n, pinned=False
                ),
                token,
                warmup,
                duration,
            )
            for n, name in ((1, "one"), (2, "two"))
        )
        read_one, read_two = (
            _reads(n, root / name / "jobtrail.db", warmup, duration)
            for n, name in ((1, "r1"), (2, "r2"))
        )
    runs = [full, base, normal, progress, one, two, read_one, read_two]
    header = ["server", "2xx/s", "p50 ms", "p99 ms", "max ms", "non-2xx/errors"]
    header += ["srv CPU %", "srv CPU us/req", "avg group", "2xx/stored"]
    say(
        table(
            f"(a) writes (and reads across processes) over HTTP, {CONNECTIONS} connections (wrk)",
            header,
            [_row(r) for r in runs],
        )
    )
    full_ratio = ratio(full["ok_per_s"], base["ok_per_s"])
    normal_ratio = ratio(normal["ok_per_s"], base["ok_per_s"])
    progress_ratio = ratio(progress["ok_per_s"], base["ok_per_s"])
    say(f"ratio create FULL / baseline:     {full_ratio}  (target >= 0.6)")
    say(f"ratio create NORMAL / baseline:   {normal_ratio}")
    say(f"ratio progress FULL / baseline:   {progress_ratio}  (target >= 0.6)")
    processes_ratio = ratio(two["ok_per_s"], one["ok_per_s"])
    say(f"ratio create 2 processes / 1:     {processes_ratio}  (both unpinned)")
    reads_ratio = ratio(read_two["ok_per_s"], read_one["ok_per_s"])
    say(f"ratio GET 2 processes / 1:        {reads_ratio}  (both unpinned)")
    summary.add("create_jobs_per_s_full", rate(full["ok_per_s"]))
    summary.add("create_p50_p99_ms_full", f"{ms(full['p50_s'])} / {ms(full['p99_s'])}")
    summary.add("create_cpu_us_per_request_full", f"{full['cpu_us_per_request']:.0f}")
    summary.add("create_jobs_per_s_normal", rate(normal["ok_per_s"]))
    summary.add("create_p50_p99_ms_normal", f"{ms(normal['p50_s'])} / {ms(normal['p99_s'])}")
    summary.add("create_baseline_per_s", rate(base["ok_per_s"]))
    summary.add("create_baseline_p50_p99_ms", f"{ms(base['p50_s'])} / {ms(base['p99_s'])}")
    summary.add("create_baseline_cpu_us_per_request", f"{base['cpu_us_per_request']:.0f}")
    summary.add("create_ratio_full_vs_baseline", f"{full_ratio} (target >= 0.6)")
    summary.add("create_ratio_normal_vs_baseline", normal_ratio)
    summary.add("create_writer_avg_group_full", f"{full['group']:.1f}")
    summary.add("progress_reports_per_s", rate(progress["ok_per_s"]))
    summary.add("progress_p50_p99_ms", f"{ms(progress['p50_s'])} / {ms(progress['p99_s'])}")
    summary.add("progress_cpu_us_per_request", f"{progress['cpu_us_per_request']:.0f}")
    summary.add("progress_ratio_vs_baseline", f"{progress_ratio} (target >= 0.6)")
    summary.add("create_jobs_per_s_1_process_unpinned", rate(one["ok_per_s"]))
    summary.add("create_jobs_per_s_2_processes_unpinned", rate(two["ok_per_s"]))
    summary.add("create_ratio_2_vs_1_process", processes_ratio)
    summary.add("get_ratio_2_vs_1_process", reads_ratio)
    summary.add("writes_2xx_all_stored", "yes" if all(r["correct"] for r in runs) else "NO")
    summary.add("writes_non_2xx_or_errors", sum(r["problems"] for r in runs))
