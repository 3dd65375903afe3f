"""`python -m bench [create|list|load ...] [--quick]`: runs the parts (all by default), prints
a table per part and a closing summary of key: value lines."""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Callable

from bench import audit, create, e2e, fanout, list_pages, long_streams, move, servers
from bench.report import Summary, say

PARTS: dict[str, Callable[..., None]] = {
    "create": create.run,
    "list": list_pages.run,
    "load": long_streams.run,
    "e2e": e2e.run,
    "fanout": fanout.run,
    "audit": audit.run,
    "move": move.run,
}


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=servers.ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=servers.ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "parts", nargs="*", metavar="{create,list,load,e2e,fanout,audit,move}", help="default: all"
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args(argv)
    unknown = [part for part in args.parts if part not in PARTS]
    if unknown:
        parser.error(f"unknown part(s): {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    parts = list(dict.fromkeys(args.parts)) or list(PARTS)
    if len(os.sched_getaffinity(0)) < 2 and (os.cpu_count() or 1) < 2:
        say("warning: fewer than 2 CPUs; server and client will share one")
    else:
        # This process is a client (list, load) and seeds in-process: keep it off the
        # server's CPU. Servers and the load generator are pinned with taskset.
        os.sched_setaffinity(0, {int(servers.CLIENT_CPU)})
    load1, load5, _ = os.getloadavg()
    say(
        f"jobtrail bench{' --quick' if args.quick else ''}: parts {', '.join(parts)}; "
        f"commit {_commit()}; Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}; {os.cpu_count()} CPUs, load average {load1:.2f} / {load5:.2f}"
    )
    say(f"server on CPU {servers.SERVER_CPU}, clients on CPU {servers.CLIENT_CPU}")
    summary = Summary()
    failed = []
    started = time.perf_counter()
    for part in parts:
        part_started = time.perf_counter()
        try:
            PARTS[part](quick=args.quick, summary=summary)
        except Exception:
            traceback.print_exc()
            failed.append(part)
            summary.add(f"{part}_FAILED", "see the traceback above")
        say(f"[{part}] {time.perf_counter() - part_started:.0f} s")
    load1, load5, _ = os.getloadavg()
    summary.add("machine_load_average_after", f"{load1:.2f} / {load5:.2f} (2 cores)")
    summary.add("bench_seconds", f"{time.perf_counter() - started:.0f}")
    say(summary.render())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
