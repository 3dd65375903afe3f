"""`python -m bench.profile create|progress`: where a write's CPU goes, by py-spy.

Starts `jobtrail serve` (FULL) on CPU 0, drives it with wrk from CPU 1 as part (a) does, and
samples the server with py-spy (`record -f raw --threads`, idle excluded) meanwhile. Prints,
for the writer thread and the event loop apart, the share of samples under each of the
functions that matter (inclusive) and the hottest leaves (exclusive), so that a cut can be
weighed before it is made. py-spy is not a project dependency: `pip install py-spy`.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import httpx

from bench import create, servers, wrk

# (label, a substring of a py-spy frame "function (file:line)"): a sample counts for the deepest
# watched function on its stack, so each share is that function's own time and its callees'
# outside the other watched ones.
WATCHED = [
    ("route handler", "(service/edge/routes/"),
    ("body read + checks", "(service/edge/bodies.py"),
    ("contract (validation)", "(service/contract/"),
    ("auth", "(service/edge/auth.py"),
    ("metrics middleware", "(service/edge/metrics.py"),
    ("starlette", "(starlette/"),
    ("uvicorn", "(uvicorn/"),
    ("domain", "(domain/"),
    ("unit of work + commands", "(service/jobs/commands.py"),
    ("worker commands", "(service/workers/"),
    ("record (store)", "record (service/store/sqlite.py"),
    ("commit", "commit ("),
    ("sqlite execute", "execute"),
    ("library: events.put / mapper", "(eventsourcing/"),
    ("transcoding", "(service/store/transcoding.py"),
    ("projector", "(projections/projector.py"),
    ("documents (JSON render)", "(projections/documents.py"),
    ("read models SQL", "(projections/jobs_view.py"),
]

OTHER = "elsewhere (C code of the loop, asyncio)"


def _sample(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [spy, "record", "-p", str(pid), "-d", f"{seconds:g}", "-r", "250", "-f", "raw"]
    argv += ["--threads", "--nonblocking", "-o", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _thread_cpu(pid: int) -> dict[str, tuple[float, int]]:
    """CPU seconds (user + system) and context switches of each thread of `pid`: the main
    thread runs the event loop; the others are the writer, the read pool's threads..."""
    spent: dict[str, tuple[float, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = "event loop" if task.name == str(pid) else f"thread {task.name}"
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            status = (task / "status").read_text().splitlines()
        except OSError:  # the thread ended meanwhile
            continue
        switches = sum(int(line.split()[1]) for line in status if "ctxt_switches" in line)
        spent[name] = ((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), switches)
    return spent


def _report(raw: Path, requests: int) -> None:
    threads: dict[str, int] = collections.Counter()
    owned: dict[tuple[str, str], int] = collections.Counter()
    leaves: dict[tuple[str, str], int] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():  # a thread's name broke the line: too rare to matter
            continue
        frames = stack.split(";")
        thread = "writer" if "jobtrail-writer" in frames[0] else frames[0].split(" ")[0]
        if "MainThread" in frames[0] or "process" in frames[0]:
            thread = "event loop"
        count = int(count_text)
        threads[thread] += count
        owner = OTHER
        for frame in reversed(frames[1:]):  # the deepest watched function owns the sample
            label = next((label for label, needle in WATCHED if needle in frame), None)
            if label is not None:
                owner = label
                break
        owned[thread, owner] += count
        leaves[thread, frames[-1]] += count
    total = sum(threads.values())
    print(f"{total} samples, {requests} requests measured")
    for thread, n in sorted(threads.items(), key=lambda kv: -kv[1]):
        print(f"\n== {thread}: {100 * n / total:.1f} % of samples")
        for label in [*(label for label, _ in WATCHED), OTHER]:
            share = owned[thread, label]
            if share:
                print(f"  {label:32} {100 * share / total:5.1f} %")
        print("  hottest leaves:")
        top = sorted(((c, f) for (t, f), c in leaves.items() if t == thread), reverse=True)
        for c, frame in top[:12]:
            print(f"    {100 * c / total:5.1f} %  {frame[:110]}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("path", choices=["create", "progress", "baseline"])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--raw", type=Path, help="also keep py-spy's raw samples in this file")
    args = parser.parse_args()
    wrk.ensure()
    with tempfile.TemporaryDirectory(prefix="jobtrail-profile-") as tmp:
        db = Path(tmp) / "jobtrail.db"
        start = servers.baseline if args.path == "baseline" else servers.jobtrail
        with start(db) as server:
            if args.path == "baseline":
                requests = create.create_requests(None)
            elif args.path == "create":
                requests = create.create_requests(servers.token(create.OWNER))
            else:
                base = f"http://127.0.0.1:{server.port}/api/v1"
                with httpx.Client(base_url=base, timeout=30) as client:
                    requests = create.progress_requests(client)
            wrk.run(server.port, requests, connections=create.CONNECTIONS, seconds=1.0)
            raw = Path(tmp) / "profile.txt"
            spy = _sample(server.process.pid, args.seconds, raw)
            result: list[wrk.Result] = []

            def drive() -> None:
                run = wrk.run(
                    server.port, requests, connections=create.CONNECTIONS, seconds=args.seconds
                )
                result.append(run)

            load = threading.Thread(target=drive)
            before = _thread_cpu(server.process.pid)
            load.start()
            spy.wait(timeout=args.seconds + 60)
            load.join()
            after = _thread_cpu(server.process.pid)
        done = result[0].requests
        if args.raw is not None:
            shutil.copyfile(raw, args.raw)
        print(f"{args.path}: {result[0].ok_per_s:,.0f} 2xx/s under the profiler")
        print("server CPU per request, by thread (us), and context switches per request:")
        for name, (cpu, switches) in sorted(after.items(), key=lambda kv: -kv[1][0]):
            used = cpu - before.get(name, (0.0, 0))[0]
            switched = switches - before.get(name, (0.0, 0))[1]
            if used > 0:
                print(f"  {name:20} {1e6 * used / done:7.0f}  {switched / done:6.2f}")
        _report(raw, result[0].requests)


if __name__ == "__main__":
    main()
