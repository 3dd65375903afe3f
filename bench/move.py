"""Part (i): `jobtrail store copy`, an SQLite store moved to PostgreSQL, at 10k and 100k events.

The SQLite store is seeded as part (f) seeds it (`seed.seed_events`: whole jobs of 10 events
through the real writer), to 10k events, copied into a new database of the PostgreSQL server at
127.0.0.1:5432 (user `postgres` or `root`, trust auth), then seeded on to 100k and copied again
into another new database. Each copy runs as the real CLI process (`bench.audit.spawn`: its
peak RSS and CPU from wait4). Printed: the copy's own events/s (events, hashes, read models,
leases, commit: the command's first line), the whole command's seconds (the source verified
before, the target after) and its peak RSS. The databases are dropped afterwards.
`--quick`: 10k only.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from bench import audit, seed
from bench.report import Summary, rate, say, table

_HOST, _PORT = "127.0.0.1", 5432
_COPIED = re.compile(r"copied ([\d,]+) events in ([\d.]+) s \(([\d,]+) events/s\)")


def _admin() -> tuple[str, psycopg.Connection] | None:
    for user, dbname in itertools.product(("postgres", "root"), ("postgres", "test")):
        with contextlib.suppress(psycopg.OperationalError):
            connection = psycopg.connect(
                host=_HOST, port=_PORT, user=user, dbname=dbname, autocommit=True,
                connect_timeout=3,
            )  # fmt: skip
            return user, connection
    return None


@contextlib.contextmanager
def _database(user: str, admin: psycopg.Connection) -> Iterator[str]:
    """The URL of a new, empty database, dropped afterwards."""
    name = f"jobtrail_bench_move_{secrets.token_hex(4)}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql://{user}@{_HOST}:{_PORT}/{name}"
    finally:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def run(*, quick: bool, summary: Summary) -> None:
    found = _admin()
    if found is None:
        say(f"[move] skipped: no PostgreSQL server at {_HOST}:{_PORT}")
        return
    user, admin = found
    sizes = (10_000,) if quick else (10_000, 100_000)
    rows = []
    with admin, tempfile.TemporaryDirectory(prefix="jobtrail-bench-move-") as tmp:
        for settings, size in seed.grown(Path(tmp), sizes, "move"):
            out = Path(tmp) / "copy.out"
            with _database(user, admin) as target:
                args = ("store", "copy", str(settings.sqlite_path), "--to", target)
                seconds, cpu, rss = audit.spawn(settings, *args, out=str(out))
            match = _COPIED.match(out.read_text())
            assert match is not None, out.read_text()
            copy_rate = float(match.group(3).replace(",", ""))
            rows.append(
                [f"copy {size:,}", rate(copy_rate), match.group(2), f"{seconds:.1f}",
                 f"{cpu:.1f}", f"{rss / 1024:.0f}"]
            )  # fmt: skip
            summary.add(f"move_copy_events_per_s_{size}", rate(copy_rate))
            summary.add(f"move_command_seconds_{size}", f"{seconds:.1f} (verifies included)")
            summary.add(f"move_peak_rss_mib_{size}", f"{rss / 1024:.0f}")
    header = ["run", "copy events/s", "copy s", "command s", "command CPU-s", "peak RSS MiB"]
    say(table("(g) store copy SQLite -> PostgreSQL", header, rows))
