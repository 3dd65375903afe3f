"""The real PostgreSQL server for the bench (127.0.0.1:5432, trust auth, user `postgres` or
`root`): a database of its own per deployment, dropped afterwards, and what the bench watches
in it while it runs.

The server is found the way tests/postgres.py finds it (the same users and admin databases);
the bench does not import the tests. Watched: the write lock that every write transaction
takes (`LOCK TABLE <events> IN EXCLUSIVE MODE`, service/store/postgres.py), by sampling
pg_locks + pg_stat_activity; the commits of the database (pg_stat_database); and the CPU of its
backends and of the server's shared WAL writer, checkpointer and background writer (/proc).
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from psycopg import sql

HOST, PORT = "127.0.0.1", 5432
USERS = ("postgres", "root")  # whichever the server knows (as tests/postgres.py)
ADMIN_DATABASES = ("test", "postgres")
EVENTS_TABLE = "jobtrail_events"  # the library's table, named after the application
SAMPLE_SECONDS = 0.02  # the lock sampler's period (50 Hz; each sample is one query)
_SHARED_BACKENDS = ("walwriter", "checkpointer", "background writer")
_names = itertools.count()


@dataclass(frozen=True)
class Server:
    user: str
    admin_database: str

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=HOST, port=PORT, user=self.user, dbname=self.admin_database, autocommit=True
        )

    def version(self) -> str:
        with self.admin() as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]).split()[0] if row else "?"


def find_server() -> Server:
    """The server, or a RuntimeError saying why there is none."""
    reasons = []
    for user, dbname in itertools.product(USERS, ADMIN_DATABASES):
        try:
            psycopg.connect(
                host=HOST, port=PORT, user=user, dbname=dbname, connect_timeout=3
            ).close()
        except psycopg.OperationalError as exc:
            reasons.append(f"{user}@{dbname}: {str(exc).strip().splitlines()[-1]}")
            continue
        return Server(user, dbname)
    raise RuntimeError(
        f"the PostgreSQL benchmarks need a server at {HOST}:{PORT} with trust auth for user "
        f"postgres or root ({'; '.join(reasons)})"
    )


@dataclass(frozen=True)
class Database:
    server: Server
    name: str

    @property
    def url(self) -> str:
        return f"postgresql://{self.server.user}@{HOST}:{PORT}/{self.name}"

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=HOST, port=PORT, user=self.server.user, dbname=self.name, autocommit=True
        )

    def commits(self) -> int:
        """Transactions committed in this database so far (pg_stat_database; the counters
        are sent by each backend at the end of a transaction, at most every 10 ms or so)."""
        with self.connect() as conn:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (self.name,)
            ).fetchone()
        return int(str(row[0])) if row else 0

    def backend_pids(self) -> set[int]:
        """This database's backends and the server's shared writers of WAL and pages."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE (datname = %s AND pid <> "
                "pg_backend_pid()) OR backend_type = ANY(%s)",
                (self.name, list(_SHARED_BACKENDS)),
            ).fetchall()
        return {int(str(pid)) for (pid,) in rows}


@contextlib.contextmanager
def database(*, synchronous_commit: str | None = None) -> Iterator[Database]:
    """A fresh, empty database `jobtrail_bench_<random>_<n>`, dropped on exit (also on
    failure). `synchronous_commit` sets that database's default (ALTER DATABASE): the server's
    configuration is shared with others and is left alone."""
    server = find_server()
    name = f"jobtrail_bench_{secrets.token_hex(4)}_{next(_names)}"
    with server.admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        if synchronous_commit is not None:
            with server.admin() as admin:
                admin.execute(
                    sql.SQL("ALTER DATABASE {} SET synchronous_commit = {}").format(
                        sql.Identifier(name), sql.Literal(synchronous_commit)
                    )
                )
        yield Database(server, name)
    finally:
        with server.admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@dataclass(frozen=True)
class LockStats:
    """What sampling the events table's write lock saw, as fractions of the samples."""

    samples: int
    held: float  # some transaction held the lock
    held_in_postgres: float  # ... and its backend was running a statement (incl. COMMIT)
    held_in_commit: float  # ... of which waiting on the WAL (writing / flushing it)
    mean_waiters: float  # backends queued for the lock, on average

    @property
    def held_by_client(self) -> float:
        """Held while the backend sat idle in its transaction: the instance's writer thread
        was running the group's commands in Python, or a statement was on the wire."""
        return self.held - self.held_in_postgres


_SAMPLE = """
SELECT l.granted, a.state, a.wait_event_type, a.wait_event
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.mode = 'ExclusiveLock'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.relation = %s::regclass
"""


class LockSampler:
    """Samples the events table's lock every SAMPLE_SECONDS from a thread, between start()
    and stop(). Each sample is a snapshot: who holds the lock (and whether its backend is
    running a statement or waiting for the client), and how many wait for it."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._stop = threading.Event()
        self._counts = [0, 0, 0, 0, 0]  # samples, held, in postgres, in commit, waiters
        self._thread = threading.Thread(target=self._run, name="lock-sampler", daemon=True)
        self._error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> LockStats:
        self._stop.set()
        self._thread.join(30)
        if self._error is not None:
            raise RuntimeError(f"lock sampling failed: {self._error}") from self._error
        n, held, active, commit, waiters = self._counts
        return LockStats(n, held / n, active / n, commit / n, waiters / n) if n else _NONE

    def _run(self) -> None:
        try:
            with self._db.connect() as conn:
                statement = conn.cursor()
                deadline = time.monotonic() + 3600  # bounded, whatever happens to stop()
                while not self._stop.is_set() and time.monotonic() < deadline:
                    rows = statement.execute(_SAMPLE, (EVENTS_TABLE,), prepare=True).fetchall()
                    self._count(rows)
                    self._stop.wait(SAMPLE_SECONDS)
        except BaseException as exc:  # reported by stop()
            self._error = exc

    def _count(self, rows: list[tuple[object, ...]]) -> None:
        counts = self._counts
        counts[0] += 1
        for granted, state, wait_type, wait_event in rows:
            if not granted:
                counts[4] += 1
                continue
            counts[1] += 1
            if state == "active":
                counts[2] += 1
                if wait_type in ("IO", "LWLock") and str(wait_event).startswith("WAL"):
                    counts[3] += 1


_NONE = LockStats(0, 0.0, 0.0, 0.0, 0.0)


@contextlib.contextmanager
def sampling(db: Database | None) -> Iterator[list[LockStats]]:
    """Samples the lock of `db` (nothing for SQLite: None) inside the block; the list it
    yields holds the stats afterwards."""
    found: list[LockStats] = []
    if db is None:
        yield found
        return
    sampler = LockSampler(db)
    sampler.start()
    try:
        yield found
    finally:
        found.append(sampler.stop())
