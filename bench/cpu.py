"""Where the machine's CPU went during a measured window, from /proc: the service's
instances, PostgreSQL (this database's backends and the server's WAL writer, checkpointer and
background writer), the clients (wrk, this process), and everything else (other work on the
shared machine)."""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.pg import Database
    from bench.servers import Server

_TICK = os.sysconf("SC_CLK_TCK")


def of_pids(pids: set[int]) -> dict[int, float]:
    """User + system CPU seconds so far of each process still there."""
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / _TICK
    return found


def machine_busy() -> float:
    """CPU seconds all CPUs spent busy since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / _TICK


def clients() -> float:
    """CPU seconds of this process and of its reaped children (wrk runs, client processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class Split:
    """CPU seconds per consumer over `wall` seconds; `postgres` is None for SQLite."""

    wall: float = 0.0
    instances: float = 0.0
    postgres: float | None = None
    clients: float = 0.0
    machine: float = 0.0

    @property
    def other(self) -> float:
        return self.machine - self.instances - (self.postgres or 0.0) - self.clients

    def cores(self, seconds: float | None) -> str:
        """CPU seconds as cores in use on average (2.00 = both cores of the machine)."""
        return "-" if seconds is None or not self.wall else f"{seconds / self.wall:.2f}"

    def render(self) -> str:
        """instances / postgres / clients / other, in cores."""
        parts = [self.instances, self.postgres, self.clients, self.other]
        return " / ".join(self.cores(p) for p in parts)


@contextlib.contextmanager
def split(instances: list[Server], db: Database | None) -> Iterator[Split]:
    """Measures the block: the Split is filled in when it ends."""
    result = Split()
    pids = db.backend_pids() if db is not None else set()
    before_pg = of_pids(pids)
    before = (
        sum(s.cpu_seconds() for s in instances),
        clients(),
        machine_busy(),
        time.perf_counter(),
    )
    yield result
    after = (
        sum(s.cpu_seconds() for s in instances),
        clients(),
        machine_busy(),
        time.perf_counter(),
    )
    if db is not None:
        after_pg = of_pids(pids | db.backend_pids())
        result.postgres = sum(v - before_pg.get(pid, 0.0) for pid, v in after_pg.items())
    result.instances = after[0] - before[0]
    result.clients = after[1] - before[1]
    result.machine = after[2] - before[2]
    result.wall = after[3] - before[3]
