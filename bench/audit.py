"""Part (f): `jobtrail audit export` and `audit verify` at 100k and 1M events.

One store is seeded through the real writer in-process (`seed.seed_events`: whole jobs of 10
events, group-committed) to the smaller size, measured, then seeded on to the larger and
measured again. Each command runs as its own process (the real CLI, output to /dev/null) on
the client CPU; its events/s counts the whole process, start-up included, and its peak RSS
comes from wait4. Targets: export >= 50k events/s, verify >= 20k events/s at 1M; peak RSS at
1M <= 1.2 x at 100k. `--quick`: 10k and 100k.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from bench import seed
from bench.report import Summary, rate, ratio, say, table
from service.settings import Settings

_JOBTRAIL = str(Path(sys.executable).parent / "jobtrail")


def _measure(settings: Settings, *args: str) -> tuple[float, int]:
    """Runs `jobtrail audit ARGS`; its seconds and peak RSS (KiB). Fails on a non-zero exit."""
    env = {
        **os.environ,
        "JOBTRAIL_DATABASE_URL": settings.database_url,
        "JOBTRAIL_DATA_DIR": str(settings.data_dir),
    }
    started = time.perf_counter()
    # posix_spawn (vfork): a fork would start the child with this process's pages, and its
    # peak RSS would count the seeding's memory.
    pid = os.posix_spawn(
        _JOBTRAIL,
        [_JOBTRAIL, "audit", *args],
        env,
        file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)],
    )
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    returncode = os.waitstatus_to_exitcode(status)
    if returncode != 0:
        raise RuntimeError(f"jobtrail audit {' '.join(args)} exited {returncode}")
    return seconds, usage.ru_maxrss


def run(*, quick: bool, summary: Summary) -> None:
    sizes = (10_000, 100_000) if quick else (100_000, 1_000_000)
    rows = []
    results: dict[tuple[str, int], tuple[float, int]] = {}
    with tempfile.TemporaryDirectory(prefix="jobtrail-bench-audit-") as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'jobtrail.db'}",
            data_dir=Path(tmp),
            jwt_secret="bench-" + "x" * 32,
        )
        have = 0
        for size in sizes:
            stats = seed.seed_events(settings, size - have, first_job=have // seed.JOB_EVENTS)
            say(f"[audit] seeded {size:,} events ({rate(stats.events_per_s)} events/s)")
            have = size
            for command in ("export", "verify"):
                seconds, rss = _measure(settings, command)
                results[(command, size)] = (size / seconds, rss)
                rows.append(
                    [
                        f"{command} {size:,}",
                        rate(size / seconds),
                        f"{seconds:.1f}",
                        f"{rss / 1024:.0f}",
                    ]
                )
    small, large = sizes
    say(table("(f) audit export / verify", ["run", "events/s", "s", "peak RSS MiB"], rows))
    for command, target in (("export", 50_000), ("verify", 20_000)):
        per_s, rss = results[(command, large)]
        rss_ratio = ratio(rss, results[(command, small)][1])
        summary.add(
            f"audit_{command}_events_per_s_{large}", f"{rate(per_s)} (target >= {target:,})"
        )
        summary.add(
            f"audit_{command}_rss_mib_{small}_{large}",
            f"{results[(command, small)][1] / 1024:.0f} / {rss / 1024:.0f}",
        )
        summary.add(f"audit_{command}_rss_ratio", f"{rss_ratio} (target <= 1.2)")
