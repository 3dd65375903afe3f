"""Part durability: what each durability setting costs, as create throughput over HTTP.

The requests of part (a) (`POST /api/v1/jobs`, wrk -t1 on CPU 1), against one `jobtrail serve`
per setting, each on a fresh database: 32 connections (the writer commits groups of requests,
one fsync each), then 1 connection (every request waits for a commit of its own: the fsync's
whole cost shows in its latency).
- SQLite `JOBTRAIL_SQLITE_SYNCHRONOUS=FULL` (the default: the WAL is fsynced at every commit)
  and `NORMAL` (fsynced only at checkpoints), the server pinned to CPU 0 as in part (a);
- PostgreSQL `synchronous_commit=on` (the default: COMMIT waits for the WAL flush) and `off`,
  set per database (`ALTER DATABASE … SET`, in the bench's own database; the server's shared
  configuration is left alone), the instance and PostgreSQL unpinned.
Each pair is measured twice, in the order A B B A, so that a drift of the shared machine falls on
both; a ratio is of the two settings' summed 2xx over their summed seconds. After each run every
2xx wrk counted must be stored (the service's own total). What each setting keeps through which
crash is README's "Durability"; a crash itself is tested (tests/service/test_crash_safety.py).
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from bench import create, servers, wrk
from bench.report import Summary, ms, rate, ratio, say, table

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager

SQLITE = ("FULL", "NORMAL")  # the durable default first
POSTGRES = ("on", "off")


CONNECTIONS = (create.CONNECTIONS, 1)


@dataclass(frozen=True, slots=True)
class Measured:
    setting: str
    runs: dict[int, wrk.Result]  # by connections
    answered: int  # 2xx of the warm-up and the measured runs
    stored: int


def _stored(port: int) -> int:
    answer = httpx.get(
        f"http://127.0.0.1:{port}/api/v1/jobs?limit=1",
        headers={"Authorization": f"Bearer {servers.token(create.OWNER)}"},
        timeout=30,
    )
    answer.raise_for_status()
    total: int = answer.json()["total"]
    return total


def _creates(setting: str, server: servers.Server, warmup: float, duration: float) -> Measured:
    requests = create.create_requests(servers.token(create.OWNER))
    warm = wrk.run(server.port, requests, connections=CONNECTIONS[0], seconds=warmup)
    runs = {n: wrk.run(server.port, requests, connections=n, seconds=duration) for n in CONNECTIONS}
    answered = sum(r.requests - r.non_2xx for r in (warm, *runs.values()))
    return Measured(setting, runs, answered, _stored(server.port))


@contextlib.contextmanager
def _sqlite(setting: str, root: Path) -> Iterator[servers.Server]:
    db = Path(tempfile.mkdtemp(prefix=f"sqlite-{setting}-", dir=root)) / "jobtrail.db"
    with servers.jobtrail(db, synchronous=setting) as server:
        yield server


@contextlib.contextmanager
def _postgres(setting: str, root: Path) -> Iterator[servers.Server]:
    setup = servers.Setup("postgres", 1, synchronous_commit=setting)
    with servers.deployment(setup, root) as where, servers.instances(where) as [server]:
        assert where.db is not None
        with where.db.connect() as conn:  # what a new session of that database runs with
            row = conn.execute("SHOW synchronous_commit").fetchone()
        if row is None or row[0] != setting:
            raise RuntimeError(f"synchronous_commit is {row}, not {setting}")
        yield server


def _pair(
    settings: tuple[str, str],
    start: Callable[[str, Path], AbstractContextManager[servers.Server]],
    quick: bool,
) -> list[Measured]:
    warmup, duration = (1.0, 2.0) if quick else (2.0, 5.0)  # wrk takes whole seconds
    first, second = settings
    with tempfile.TemporaryDirectory(prefix="jobtrail-bench-durability-") as tmp:
        measured = []
        for setting in (first, second, second, first):
            with start(setting, Path(tmp)) as server:
                measured.append(_creates(setting, server, warmup, duration))
    return measured


def _rate(measured: list[Measured], setting: str, connections: int) -> float:
    runs = [m.runs[connections] for m in measured if m.setting == setting]
    return sum(r.requests - r.non_2xx for r in runs) / sum(r.seconds for r in runs)


def _report(
    name: str, key: str, settings: tuple[str, str], measured: list[Measured], summary: Summary
) -> None:
    rows = []
    for m in measured:
        cells = [f"{name} {m.setting}"]
        for n in CONNECTIONS:
            r = m.runs[n]
            cells += [rate(r.ok_per_s), ms(r.p50_s), ms(r.p99_s), str(r.non_2xx + r.socket_errors)]
        rows.append([*cells, f"{'ok' if m.answered <= m.stored else 'LOST'} "
                     f"({m.answered}/{m.stored})"])  # fmt: skip
    header = ["setting (A B B A)"]
    for n in CONNECTIONS:
        header += [f"{n}c 2xx/s", f"{n}c p50 ms", f"{n}c p99 ms", f"{n}c errors"]
    say(table(f"durability: creates on {name} (wrk)", [*header, "2xx/stored"], rows))
    durable, fast = settings
    for n in CONNECTIONS:
        rates = {s: _rate(measured, s, n) for s in settings}
        each = ", ".join(
            ratio(b.runs[n].ok_per_s, a.runs[n].ok_per_s)
            for a, b in ((measured[0], measured[1]), (measured[3], measured[2]))
        )
        cost = ratio(rates[fast], rates[durable])
        p50 = {s: [m.runs[n].p50_s for m in measured if m.setting == s] for s in settings}
        say(f"ratio create {fast} / {durable} ({name}), {n} connection(s): {cost}  (each round: "
            f"{each}); p50 {durable} {'/'.join(ms(v) for v in p50[durable])} ms, "
            f"{fast} {'/'.join(ms(v) for v in p50[fast])} ms")  # fmt: skip
        prefix = f"durability_{key}_{n}c"
        summary.add(f"{prefix}_creates_per_s_{durable}_{fast}".lower(),
                    f"{rate(rates[durable])} / {rate(rates[fast])}")  # fmt: skip
        summary.add(f"{prefix}_ratio_{fast}_vs_{durable}".lower(), f"{cost} (rounds {each})")
    stored = all(m.answered <= m.stored for m in measured)
    summary.add(f"durability_{key}_2xx_all_stored", "yes" if stored else "NO")


def run_sqlite(*, quick: bool, summary: Summary) -> None:
    wrk.ensure()
    say(f"\n[durability, SQLite] {' vs '.join(SQLITE)}, one server pinned to CPU 0, A B B A")
    _report("SQLite", "sqlite", SQLITE, _pair(SQLITE, _sqlite, quick), summary)


def run_postgres(*, quick: bool, summary: Summary) -> None:
    wrk.ensure()
    say(f"\n[durability, PostgreSQL] synchronous_commit {' vs '.join(POSTGRES)}, one instance"
        " and PostgreSQL unpinned, A B B A")  # fmt: skip
    measured = _pair(POSTGRES, _postgres, quick)
    _report("PostgreSQL synchronous_commit", "pg", POSTGRES, measured, summary)
