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
from bench.report import Summary, ms, percentile, ratio, say, table

TARGET_P99_AT_5000 = 1.0
TARGET_RSS_PER_SUBSCRIBER_KIB = 30


ENV = {"JOBTRAIL_SSE_MAX_STREAMS_PER_OWNER": "100000"}


@contextlib.contextmanager
def _jobtrail(db: Path) -> Iterator[servers.Server]:
    with servers.jobtrail_at(f"sqlite:///{db}", db.parent, env=ENV, name="jobtrail-fanout") as s:
        yield s


@contextlib.contextmanager
def _baseline(logdir: Path) -> Iterator[servers.Server]:
    port = servers.free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.fanout_baseline:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--loop", "uvloop", "--http", "httptools"]
    argv += ["--no-access-log", "--log-level", "warning"]
    with servers._running("fanout-baseline", argv, servers._clean_env({}), port, logdir) as s:
        yield s


def _client(
    server: servers.Server | list[servers.Server], subs: int, events: int, **target: str
) -> dict[str, object]:
    """Runs the subscriber/poster process against `server` (or several: the subscribers spread
    evenly over them, the poster on the first)."""
    many = server if isinstance(server, list) else [server]
    argv = ["taskset", "-c", servers.CLIENT_CPU, sys.executable, "-m", "bench.fanout_client"]
    argv += ["--subs", str(subs), "--events", str(events)]
    for one in many:
        argv += ["--port", str(one.port), "--server-pid", str(one.process.pid)]
    for key, value in target.items():
        argv += [f"--{key}", value]
    cpu_before = sum(one.cpu_seconds() for one in many)
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
    result["server_cpu_seconds"] = sum(one.cpu_seconds() for one in many) - cpu_before
    return result


def _jobtrail_run(tmp: Path, subs: int, events: int) -> dict[str, object]:
    with _jobtrail(tmp / f"fanout-{subs}.db") as server:
        return _follow([server], subs, events)


def _follow(instances: list[servers.Server], subs: int, events: int) -> dict[str, object]:
    """Creates the job through the first instance; its subscribers follow it on all."""
    token = servers.token("bench")
    with httpx.Client(base_url=f"http://127.0.0.1:{instances[0].port}", timeout=30) as client:
        headers = {"Authorization": f"Bearer {token}"}
        job = client.post("/api/v1/jobs", json={"type": "bench.fanout"}, headers=headers)
        job_id = job.json()["id"]
    path = f"/api/v1/jobs/{job_id}/events"
    return _client(instances, subs, events, path=path, token=token, job=job_id)


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


def run_postgres(*, quick: bool, summary: Summary) -> None:
    """The fan-out on PostgreSQL with one and two instances (the subscribers spread evenly
    over them, the poster on the first), SQLite with one instance beside; servers unpinned."""
    subs, events = (100, 40) if quick else (1000, 200)
    rows, p99s = [], {}
    with tempfile.TemporaryDirectory(prefix="jobtrail-fanout-pg-") as name:
        for setup in servers.SCALE_OUT:
            with (
                servers.deployment(setup, Path(name)) as where,
                servers.instances(where, env=ENV) as instances,
            ):
                result = _follow(instances, subs, events)
            main = _row(setup.label, result)
            rows.append(main)
            by_port = result["latencies_by_port"]
            assert isinstance(by_port, list)
            if len(by_port) > 1:
                for n, mine in enumerate(by_port):
                    on = "posting instance" if n == 0 else "other instance"
                    rows.append(
                        [f"  subscribers on the {on}", "", "", ms(percentile(mine, 50)),
                         ms(percentile(mine, 99)), ms(max(mine, default=float("nan"))),
                         "", "", ""]
                    )  # fmt: skip
            latencies = result["latencies"]
            assert isinstance(latencies, list)
            p99s[setup] = percentile(latencies, 99)
            key = f"fanout_{setup.backend}_x{setup.instances}"
            summary.add(f"{key}_delivered", main[2])
            summary.add(f"{key}_p50_p99_max_ms", f"{main[3]} / {main[4]} / {main[5]}")
    header = ["server", "subs", "delivered", "p50 ms", "p99 ms", "max ms", "KiB RSS/sub"]
    header += ["connect s", "server CPU s"]
    say(table(f"SSE fan-out on one and two instances: {events} events at 20/s", header, rows))
    sqlite, one, two = (p99s[s] for s in servers.SCALE_OUT)
    say(f"ratio fan-out p99 PostgreSQL x2 / x1: {ratio(two, one)}")
    say(f"ratio fan-out p99 PostgreSQL x1 / SQLite x1: {ratio(one, sqlite)}")
    summary.add("fanout_p99_ratio_pg_2_vs_1_instance", ratio(two, one))
    summary.add("fanout_p99_ratio_pg_vs_sqlite", ratio(one, sqlite))
