"""The servers under test: `jobtrail serve` (the real CLI) and the bare baseline app, each a
subprocess pinned to CPU 0, stopped by its PID when the `with` block ends."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
    port = free_port()
    env = _clean_env(
        {
            "JOBTRAIL_DATABASE_URL": database_url or f"sqlite:///{db}",
            "JOBTRAIL_JWT_SECRET": SECRET,
            "JOBTRAIL_SQLITE_SYNCHRONOUS": synchronous,
        }
    )
    argv = [str(BIN / "jobtrail"), "serve", "--port", str(port), "--workers", str(workers)]
    name = f"jobtrail-{synchronous}-{workers}"
    with _running(name, argv, env, port, db.parent, pinned=pinned) as server:
        yield server


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
