"""Part (f): `jobtrail audit export` and `audit verify` at 100k and 1M events.

One store is seeded through the real writer in-process (`seed.seed_events`: whole jobs of 10
events, group-committed) to the smaller size, measured, then seeded on to the larger and
measured again. Each command runs as its own process (the real CLI, output to /dev/null) on
the client CPU; its events/s counts the whole process, start-up included (~0.3 s), and its
peak RSS and CPU time from wait4 (see `_SPAWN`); events per CPU second is the figure to
trust on a busy machine. Targets: export >= 50k events/s, verify >= 20k events/s at 1M;
peak RSS at 1M <= 1.2 x at 100k. `--quick`: 10k and 100k.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import seed
from bench.report import Summary, rate, ratio, say, table
from service.settings import Settings

_JOBTRAIL = str(Path(sys.executable).parent / "jobtrail")


# Runs the command (output to the file argv[1]) from a small interpreter and prints its exit
# status and peak RSS. Linux carries a process's peak RSS across exec, and a child starts with
# its parent's pages: spawned from this process, which has just seeded a million events, the
# command would report this process's peak, not its own.
_SPAWN = """
import os, sys
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ,
                     file_actions=[(os.POSIX_SPAWN_OPEN, 1, sys.argv[1],
                                    os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, usage.ru_utime + usage.ru_stime)
"""


def spawn(
    settings: Settings, *args: str, out: str = os.devnull, env: dict[str, str] | None = None
) -> tuple[float, float, int]:
    """Runs `jobtrail ARGS` on the store of `settings`, its stdout to the file `out`; its
    seconds, CPU seconds and peak RSS (KiB). Fails on a non-zero exit."""
    env = {
        **os.environ,
        "JOBTRAIL_DATABASE_URL": settings.database_url,
        "JOBTRAIL_DATA_DIR": str(settings.data_dir),
        **(env or {}),
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _SPAWN, out, _JOBTRAIL, *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    code, rss, cpu = done.stdout.split()
    if code != "0":
        raise RuntimeError(f"jobtrail {' '.join(args)} exited {code}: {done.stderr}")
    return seconds, float(cpu), int(rss)


def _measure(settings: Settings, *args: str) -> tuple[float, float, int]:
    """Runs `jobtrail audit ARGS` (output to /dev/null)."""
    return spawn(settings, "audit", *args)


def run(*, quick: bool, summary: Summary) -> None:
    sizes = (10_000, 100_000) if quick else (100_000, 1_000_000)
    rows = []
    results: dict[tuple[str, int], tuple[float, float, int]] = {}
    with tempfile.TemporaryDirectory(prefix="jobtrail-bench-audit-") as tmp:
        for settings, size in seed.grown(Path(tmp), sizes, "audit"):
            for command in ("export", "verify"):
                seconds, cpu, rss = _measure(settings, command)
                results[(command, size)] = (size / seconds, size / cpu, rss)
                row = [f"{command} {size:,}", rate(size / seconds), rate(size / cpu)]
                rows.append([*row, f"{seconds:.1f}", f"{rss / 1024:.0f}"])
    small, large = sizes
    header = ["run", "events/s", "events/CPU-s", "s", "peak RSS MiB"]
    say(table("(f) audit export / verify", header, rows))
    for command, target in (("export", 50_000), ("verify", 20_000)):
        per_s, per_cpu_s, rss = results[(command, large)]
        figure = f"{rate(per_s)}; per CPU-s {rate(per_cpu_s)} (target >= {target:,})"
        summary.add(f"audit_{command}_events_per_s_{large}", figure)
        before = results[(command, small)][2]
        summary.add(
            f"audit_{command}_rss_mib_{small}_{large}", f"{before / 1024:.0f} / {rss / 1024:.0f}"
        )
        summary.add(f"audit_{command}_rss_ratio", f"{ratio(rss, before)} (target <= 1.2)")
