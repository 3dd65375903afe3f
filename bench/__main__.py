"""`python -m bench [create|list|load ...] [--quick] [--backend sqlite|postgres|both]`: runs the
parts (all by default) on SQLite, on PostgreSQL (one and two instances, SQLite beside), or both
(the default); prints a table per part and a closing summary of key: value lines."""

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

from bench import (
    audit,
    create,
    durability,
    e2e,
    fanout,
    list_pages,
    list_scaled,
    long_streams,
    move,
    pg,
    scale_out,
    servers,
    soak,
)
from bench.report import Summary, say

# Each part's run on each backend; the PostgreSQL runs compare one and two instances, with
# SQLite (one instance, measured the same way) beside.
PARTS: dict[str, dict[str, Callable[..., None]]] = {
    "create": {"sqlite": create.run, "postgres": scale_out.run},
    "list": {"sqlite": list_pages.run, "postgres": list_scaled.run_postgres},
    "load": {"sqlite": long_streams.run},
    "e2e": {"sqlite": e2e.run, "postgres": e2e.run_postgres},
    "fanout": {"sqlite": fanout.run, "postgres": fanout.run_postgres},
    "audit": {"sqlite": audit.run},
    "soak": {"sqlite": soak.run},
    "move": {"sqlite": move.run},
    "durability": {"sqlite": durability.run_sqlite, "postgres": durability.run_postgres},
}
BACKENDS = {"sqlite": ("sqlite",), "postgres": ("postgres",), "both": ("sqlite", "postgres")}


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
        "parts",
        nargs="*",
        metavar="{create,list,load,e2e,fanout,audit,soak,move,durability}",
        help="default: all",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--backend",
        choices=tuple(BACKENDS),
        default="both",
        help="sqlite, postgres (one and two instances, SQLite beside) or both (the default)",
    )
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
    postgres = ""
    if "postgres" in BACKENDS[args.backend]:
        try:
            server = pg.find_server()
        except RuntimeError as exc:
            parser.error(f"{exc}; or run only SQLite's benchmarks: --backend sqlite")
        postgres = f", PostgreSQL {server.version()} (user {server.user})"
    load1, load5, _ = os.getloadavg()
    say(
        f"jobtrail bench{' --quick' if args.quick else ''}: parts {', '.join(parts)}, "
        f"backend {args.backend}; "
        f"commit {_commit()}; Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}{postgres}; {os.cpu_count()} CPUs, load average "
        f"{load1:.2f} / {load5:.2f}"
    )
    say(f"server on CPU {servers.SERVER_CPU}, clients on CPU {servers.CLIENT_CPU}")
    summary = Summary()
    failed = []
    started = time.perf_counter()
    for part in parts:
        for backend in BACKENDS[args.backend]:
            if backend not in PARTS[part]:
                say(f"[{part}] has no {backend} run")
                continue
            part_started = time.perf_counter()
            try:
                PARTS[part][backend](quick=args.quick, summary=summary)
            except Exception:
                traceback.print_exc()
                failed.append(part)
                summary.add(f"{part}_{backend}_FAILED", "see the traceback above")
            load1, load5, _ = os.getloadavg()
            say(
                f"[{part}, {backend}] {time.perf_counter() - part_started:.0f} s; machine load "
                f"average {load1:.2f} / {load5:.2f}"
            )
            summary.add(f"{part}_{backend}_load_average_after", f"{load1:.2f} / {load5:.2f}")
    load1, load5, _ = os.getloadavg()
    summary.add("machine_load_average_after", f"{load1:.2f} / {load5:.2f} (2 cores)")
    summary.add("bench_seconds", f"{time.perf_counter() - started:.0f}")
    say(summary.render())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
