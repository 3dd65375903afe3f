"""What a measured run cost beyond its client's own figures: the writers' transactions and
groups (each instance's /metrics), PostgreSQL's commits and its write lock (bench/pg.py), and
where the CPU went (bench/cpu.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

from bench import cpu, pg, servers
from bench.report import rate


def writer_groups(port: int) -> tuple[float, float]:
    """(write transactions, commands in them) so far, from an instance's /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    values = dict.fromkeys(("count", "sum"), 0.0)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        suffix = name.removeprefix("jobtrail_writer_group_commands_")
        if suffix in values and name != suffix:
            values[suffix] = float(value)
    return values["count"], values["sum"]


@dataclass
class Window:
    """What a measured run cost, beyond wrk's own figures."""

    split: cpu.Split = field(default_factory=cpu.Split)
    lock: pg.LockStats | None = None
    commits: int | None = None  # PostgreSQL's count of committed transactions
    groups: float = 0.0  # write transactions of the instances' writers
    commands: float = 0.0


@contextlib.contextmanager
def observe(instances: list[servers.Server], where: servers.Deployment) -> Iterator[Window]:
    window = Window()
    before = [writer_groups(s.port) for s in instances]
    commits = where.db.commits() if where.db is not None else None
    with pg.sampling(where.db) as lock, cpu.split(instances, where.db) as split:
        yield window
    after = [writer_groups(s.port) for s in instances]
    window.split = split
    window.lock = lock[0] if lock else None
    if where.db is not None and commits is not None and window.lock is not None:
        # Each of the sampler's queries is a transaction of its own in this database.
        window.commits = where.db.commits() - commits - window.lock.samples
    window.groups = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
    window.commands = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}"


HEADER = [
    "write tx/s", "avg group", "commits/s", "lock held %", "client/PG (WAL) %", "waiters",
    "wait ms/tx", "held us/op", "cores inst/pg/clients/other",
]  # fmt: skip


def cells(w: Window, ops: int) -> list[str]:
    """The columns of HEADER for a run of `ops` operations (2xx answers, jobs)."""
    wall, lock = w.split.wall, w.lock
    held = "-" if lock is None or not ops else f"{1e6 * lock.held * wall / ops:.0f}"
    waited = (
        "-" if lock is None or not w.groups else f"{1e3 * lock.mean_waiters * wall / w.groups:.1f}"
    )
    split = w.split
    return [
        rate(w.groups / wall) if wall else "-",
        f"{w.commands / w.groups:.1f}" if w.groups else "-",
        "-" if w.commits is None or not wall else rate(w.commits / wall),
        pct(lock.held if lock else None),
        "-"
        if lock is None
        else f"{pct(lock.held_by_client)}/{pct(lock.held_in_postgres)}"
        f" ({pct(lock.held_in_commit)})",
        "-" if lock is None else f"{lock.mean_waiters:.2f}",
        waited,
        held,
        split.render(),
    ]


LEGEND = (
    "lock: the events table's write lock, sampled every "
    f"{pg.SAMPLE_SECONDS * 1000:.0f} ms; held % = samples with a holder; client/PG = the holder's"
    " backend idle in its transaction (the instance's writer running the commands, or a"
    " statement on its way) / running a statement (WAL = of which waiting on the WAL write or"
    " flush); waiters = backends queued for it on average; wait ms/tx = waiters / write tx/s"
    " (Little's law); held us/op = held % x seconds / operations; write tx/s = the writers'"
    " groups that recorded events (/metrics); commits/s = PostgreSQL's count for this database"
    " (the sampler's taken out; it also counts the pool's pre-ping of each connection taken"
    " and the writers' transactions that recorded nothing, e.g. a claim that found no job);"
    " cores = CPU seconds per second from /proc: the instances, PostgreSQL (this database's"
    " backends, the sampler's included, + the server's WAL writer, checkpointer, bgwriter),"
    " the clients (wrk, the bench process), the rest of the machine"
)
