"""The servers under test: `jobtrail serve` (the real CLI) and the bare baseline app, each a
subprocess pinned to CPU 0, stopped by its PID when the `with` block ends."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import pg
from service.edge.auth import TokenVerifier
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SECRET = "bench-secret-" + "s" * 40
SERVER_CPU = "0"
CLIENT_CPU = "1"
_START_TIMEOUT = 90.0
_STOP_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_for(db: Path, synchronous: str = "FULL") -> Settings:
    """The settings a server on `db` runs with (for in-process seeding and tokens)."""
    return Settings(
        database_url=f"sqlite:///{db}",
        data_dir=db.parent,
        jwt_secret=SECRET,
        sqlite_synchronous=synchronous,  # type: ignore[arg-type]
    )


def token(sub: str, scopes: tuple[str, ...] = ("jobs:read", "jobs:write")) -> str:
    verifier = TokenVerifier.from_settings(Settings(jwt_secret=SECRET))
    return verifier.issue(sub, scopes, 6 * 3600)


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def cpu_seconds(self) -> float:
        """User + system CPU so far of the server process (all its threads) and of the
        processes it started (`serve --workers N`)."""
        ticks = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            if self.process.pid in (int(entry.name), int(fields[1])):
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBTRAIL_")}
    env.update(extra)
    return env


@contextlib.contextmanager
def jobtrail(
    db: Path,
    *,
    synchronous: str = "FULL",
    workers: int = 1,
    pinned: bool = True,
    database_url: str | None = None,
) -> Iterator[Server]:
    """`jobtrail serve` on `db` (or on `database_url`; its log beside `db` then): one process
    pinned to CPU 0, or `workers` processes on any."""
    with jobtrail_at(
        database_url or f"sqlite:///{db}",
        db.parent,
        workers=workers,
        pinned=pinned,
        env={"JOBTRAIL_SQLITE_SYNCHRONOUS": synchronous},
        name=f"jobtrail-{synchronous}-{workers}",
    ) as server:
        yield server


@contextlib.contextmanager
def jobtrail_at(
    url: str,
    logdir: Path,
    *,
    workers: int = 1,
    pinned: bool = True,
    env: dict[str, str] | None = None,
    name: str = "jobtrail",
) -> Iterator[Server]:
    """`jobtrail serve` on the database `url` (SQLite or PostgreSQL), its log in `logdir`."""
    port = free_port()
    full_env = _clean_env(
        {
            "JOBTRAIL_DATABASE_URL": url,
            "JOBTRAIL_JWT_SECRET": SECRET,
            # One owner drives thousands of requests per second here: the per-owner rate
            # limit would measure itself.
            "JOBTRAIL_LIMIT_REQUESTS_PER_SECOND": "0",
            **(env or {}),
        }
    )
    argv = [str(BIN / "jobtrail"), "serve", "--port", str(port), "--workers", str(workers)]
    with _running(name, argv, full_env, port, logdir, pinned=pinned) as server:
        yield server


@dataclass(frozen=True)
class Setup:
    """A deployment the scale-out comparisons run on: a backend and its number of instances
    (separate `jobtrail serve` processes on one database, each on its own port, unpinned)."""

    backend: str  # "sqlite" | "postgres"
    instances: int
    synchronous_commit: str | None = None  # PostgreSQL: the database's default, when set

    @property
    def label(self) -> str:
        name = "SQLite" if self.backend == "sqlite" else "PostgreSQL"
        extra = f", synchronous_commit={self.synchronous_commit}" if self.synchronous_commit else ""
        return f"{name} x{self.instances}{extra}"


# SQLite with one instance (measured the same way, beside), PostgreSQL with one and two.
SCALE_OUT = (Setup("sqlite", 1), Setup("postgres", 1), Setup("postgres", 2))


@dataclass(frozen=True)
class Deployment:
    setup: Setup
    url: str
    logdir: Path
    db: pg.Database | None  # PostgreSQL's database; None on SQLite

    def settings(self) -> Settings:
        """The settings of an instance (for seeding in-process and for tokens)."""
        return Settings(database_url=self.url, data_dir=self.logdir, jwt_secret=SECRET)


@contextlib.contextmanager
def deployment(setup: Setup, root: Path) -> Iterator[Deployment]:
    """An empty database for `setup`: an SQLite file under `root`, or a PostgreSQL database of
    its own, dropped on exit."""
    logdir = Path(tempfile.mkdtemp(prefix=f"{setup.backend}-", dir=root))
    if setup.backend == "sqlite":
        yield Deployment(setup, f"sqlite:///{logdir / 'jobtrail.db'}", logdir, None)
        return
    with pg.database(synchronous_commit=setup.synchronous_commit) as db:
        yield Deployment(setup, db.url, logdir, db)


@contextlib.contextmanager
def instances(where: Deployment, env: dict[str, str] | None = None) -> Iterator[list[Server]]:
    """`where.setup.instances` `jobtrail serve` processes on the deployment's database, each on
    its own port, unpinned; all stopped by PID on exit."""
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(
                jobtrail_at(
                    where.url,
                    where.logdir,
                    pinned=False,
                    env=env,
                    name=f"jobtrail-{where.setup.backend}-{n}",
                )
            )
            for n in range(where.setup.instances)
        ]


@contextlib.contextmanager
def baseline(db: Path) -> Iterator[Server]:
    port = free_port()
    env = _clean_env({"BENCH_BASELINE_DB": str(db)})
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.baseline_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with _running("baseline", argv, env, port, db.parent) as server:
        yield server


@contextlib.contextmanager
def _running(
    name: str, argv: list[str], env: dict[str, str], port: int, logdir: Path, pinned: bool = True
) -> Iterator[Server]:
    log = logdir / f"{name}-{port}.log"
    if pinned:
        argv = ["taskset", "-c", SERVER_CPU, *argv]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=out)
    server = Server(name, port, process, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        _stop(process)


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock:
                sock.sendall(request)
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{server.name} did not answer /healthz within {_START_TIMEOUT:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(_STOP_TIMEOUT)
