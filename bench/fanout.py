"""`python -m bench fanout`: live SSE fan-out. N subscribers follow one job while a poster
writes 200 events at 20/s; latency is post → received by every subscriber. The same against a
bare sse-starlette broadcast server (bench/fanout_baseline.py) in the same run, at 1,000
subscribers; then jobtrail alone at 5,000.

The posted events are `PATCH /api/v1/jobs/{id}` (event `updated`): the same path through the
writer, the projector and the live feed as a worker's progress report, whose answer (API.md:
`cancel_requested`, `lease_expires_at`) carries no event id to time the delivery against.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench import servers
from bench.report import Summary, ms, percentile, say, table

TARGET_P99_AT_5000 = 1.0
TARGET_RSS_PER_SUBSCRIBER_KIB = 30


@contextlib.contextmanager
def _jobtrail(db: Path) -> Iterator[servers.Server]:
    port = servers.free_port()
    env = servers._clean_env(
        {
            "JOBTRAIL_DATABASE_URL": f"sqlite:///{db}",
            "JOBTRAIL_JWT_SECRET": servers.SECRET,
            "JOBTRAIL_SSE_MAX_STREAMS_PER_OWNER": "100000",
        }
    )
    argv = [str(servers.BIN / "jobtrail"), "serve", "--port", str(port)]
    with servers._running("jobtrail-fanout", argv, env, port, db.parent) as server:
        yield server


@contextlib.contextmanager
def _baseline(logdir: Path) -> Iterator[servers.Server]:
    port = servers.free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.fanout_baseline:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--loop", "uvloop", "--http", "httptools"]
    argv += ["--no-access-log", "--log-level", "warning"]
    with servers._running("fanout-baseline", argv, servers._clean_env({}), port, logdir) as s:
        yield s


def _client(server: servers.Server, subs: int, events: int, **target: str) -> dict[str, object]:
    argv = ["taskset", "-c", servers.CLIENT_CPU, sys.executable, "-m", "bench.fanout_client"]
    argv += ["--port", str(server.port), "--subs", str(subs), "--events", str(events)]
    argv += ["--server-pid", str(server.process.pid)]
    for key, value in target.items():
        argv += [f"--{key}", value]
    cpu_before = server.cpu_seconds()
    process = subprocess.Popen(argv, cwd=servers.ROOT, stdout=subprocess.PIPE)
    try:
        out, _ = process.communicate(timeout=events / 20 + subs / 100 + 120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"fanout client failed with exit code {process.returncode}")
    result: dict[str, object] = json.loads(out)
    result["server_cpu_seconds"] = server.cpu_seconds() - cpu_before
    return result


def _jobtrail_run(tmp: Path, subs: int, events: int) -> dict[str, object]:
    with _jobtrail(tmp / f"fanout-{subs}.db") as server:
        token = servers.token("bench")
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as client:
            headers = {"Authorization": f"Bearer {token}"}
            job = client.post("/api/v1/jobs", json={"type": "bench.fanout"}, headers=headers)
            job_id = job.json()["id"]
        path = f"/api/v1/jobs/{job_id}/events"
        return _client(server, subs, events, path=path, token=token, job=job_id)


def _baseline_run(tmp: Path, subs: int, events: int) -> dict[str, object]:
    with _baseline(tmp) as server:
        return _client(server, subs, events, path="/sse")


def _row(name: str, result: dict[str, object]) -> list[str]:
    latencies = result["latencies"]
    assert isinstance(latencies, list)
    subs = int(str(result["subs"]))
    rss = (int(str(result["rss_after_kib"])) - int(str(result["rss_before_kib"]))) / subs
    cpu = float(str(result["server_cpu_seconds"]))
    return [
        name,
        str(subs),
        f"{result['deliveries']}/{result['deliveries_expected']}",
        ms(percentile(latencies, 50)),
        ms(percentile(latencies, 99)),
        ms(max(latencies) if latencies else float("nan")),
        f"{rss:.1f}",
        f"{float(str(result['connect_seconds'])):.1f}",
        f"{cpu:.1f}",
    ]


def run(*, quick: bool, summary: Summary) -> None:
    small, large, events = (100, 300, 40) if quick else (1000, 5000, 200)
    with tempfile.TemporaryDirectory(prefix="jobtrail-fanout-") as name:
        tmp = Path(name)
        ours = _jobtrail_run(tmp, small, events)
        base = _baseline_run(tmp, small, events)
        big = _jobtrail_run(tmp, large, events)
    rows = [
        _row("jobtrail", ours),
        _row("bare sse-starlette", base),
        _row("jobtrail", big),
    ]
    header = ["server", "subs", "delivered", "p50 ms", "p99 ms", "max ms", "KiB RSS/sub"]
    header += ["connect s", "server CPU s"]
    say(table(f"SSE fan-out: {events} events at 20/s to one job's subscribers", header, rows))
    p99 = {
        key: percentile(r["latencies"], 99)
        for key, r in (("ours", ours), ("base", base), ("big", big))
    }  # type: ignore[arg-type]
    for key, result in (("fanout_small", ours), ("fanout_baseline", base), ("fanout_large", big)):
        row = _row(key, result)
        summary.add(f"{key}_subs", row[1])
        summary.add(f"{key}_delivered", row[2])
        summary.add(f"{key}_p50_p99_max_ms", f"{row[3]} / {row[4]} / {row[5]}")
        summary.add(f"{key}_rss_kib_per_subscriber", row[6])
    summary.add(
        "fanout_p99_vs_baseline", f"{p99['ours'] / p99['base']:.2f}" if p99["base"] else "-"
    )
    all_delivered = all(r["deliveries"] == r["deliveries_expected"] for r in (ours, base, big))
    summary.add("fanout_every_event_delivered", all_delivered)
    summary.add(
        f"fanout_large_p99_under_{TARGET_P99_AT_5000:.0f}s", p99["big"] < TARGET_P99_AT_5000
    )
