"""A fault drill, not a benchmark: a real PostgreSQL restart (`pg_ctl restart -m fast`) under
`jobtrail serve` while clients write. The suite cannot restart the machine's server (other
tests use it at the same time), so this starts a private cluster of its own (initdb in a
temporary directory, a free port of 127.0.0.1, as the `postgres` user when run as root),
and stops it by its PID file at the end, also on failure.

    .venv/bin/python -m bench.pg_restart [--before 2] [--after 5]

Printed: the writes' answers during the run (each 201 or 503, with the 503s' reasons), how
long writes failed around the restart, what /readyz said meanwhile, the 503'd creates retried
with their Idempotency-Key (each must then name one job), and `jobtrail audit verify`.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench import servers

PG_BIN = Path("/usr/lib/postgresql")


def _pg(tool: str) -> str:
    found = sorted(PG_BIN.glob(f"*/bin/{tool}"))
    return str(found[-1]) if found else tool


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _pg_ctl(data: Path, *args: str) -> None:
    argv = _as_postgres([_pg("pg_ctl"), "-D", str(data), "-w", *args])
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Drill:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.start = time.monotonic()
        self.writes: list[tuple[float, str, int, str]] = []  # (t, key, status, reason)
        self.ready: list[tuple[float, int, str]] = []
        self.stop = threading.Event()

    def now(self) -> float:
        return time.monotonic() - self.start

    def write(self, n: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as client:
            for i in range(100_000):
                if self.stop.is_set():
                    return
                key = f"w{n}-{i}"
                response = client.post(
                    "/api/v1/jobs", json={"type": "t"}, headers={"Idempotency-Key": key}
                )
                reason = ""
                if response.status_code == 503:
                    reason = response.json()["error"]["details"].get("reason", "")
                    time.sleep(0.05)  # as a client honouring Retry-After would, briefly
                self.writes.append((self.now(), key, response.status_code, reason))

    def poll_ready(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.wait(0.1):
                response = client.get("/readyz")
                self.ready.append(
                    (self.now(), response.status_code, response.json().get("reason", ""))
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pg_restart")
    parser.add_argument("--before", type=float, default=2.0, help="seconds of writes first")
    parser.add_argument("--after", type=float, default=5.0, help="seconds after the restart")
    options = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="jobtrail-pg-restart-"))
    data, port = work / "cluster", servers.free_port()
    if os.geteuid() == 0:
        shutil.chown(work, "postgres")
    started = False
    try:
        subprocess.run(
            _as_postgres([_pg("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]),
            check=True,
            capture_output=True,
        )
        options_line = f"-p {port} -k {work} -c listen_addresses=127.0.0.1"
        _pg_ctl(data, "-o", options_line, "-l", str(work / "postgres.log"), "start")
        started = True
        subprocess.run(
            [_pg("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "jobtrail"],
            check=True,
        )
        url = f"postgresql://postgres@127.0.0.1:{port}/jobtrail"
        return _drill(work, data, url, options)
    finally:
        if started:
            _pg_ctl(data, "-m", "fast", "stop")
        shutil.rmtree(work, ignore_errors=True)


def _drill(work: Path, data: Path, url: str, options: argparse.Namespace) -> int:
    with servers.jobtrail(work / "serve", pinned=False, database_url=url) as server:
        drill = Drill(f"http://127.0.0.1:{server.port}", servers.token("alice"))
        threads = [threading.Thread(target=drill.write, args=(n,)) for n in range(3)]
        threads.append(threading.Thread(target=drill.poll_ready))
        for thread in threads:
            thread.start()
        try:
            time.sleep(options.before)
            restart_at = drill.now()
            _pg_ctl(data, "-m", "fast", "restart")
            restarted_at = drill.now()
            time.sleep(options.after)
        finally:
            drill.stop.set()
            for thread in threads:
                thread.join(timeout=60)
        return _report(drill, server.port, url, restart_at, restarted_at)


def _report(drill: Drill, port: int, url: str, restart_at: float, restarted_at: float) -> int:
    statuses = collections.Counter(status for _, _, status, _ in drill.writes)
    reasons = collections.Counter(reason for _, _, status, reason in drill.writes if reason)
    failing = [t for t, _, status, _ in drill.writes if status != 201]
    ok_after = [t for t, _, status, _ in drill.writes if status == 201 and t > restarted_at]
    not_ready = [(t, reason) for t, status, reason in drill.ready if status != 200]
    print(f"restart: pg_ctl restart -m fast took {restarted_at - restart_at:.2f} s")
    print(f"writes: {dict(statuses)}; 503 reasons: {dict(reasons)}")
    if failing:
        print(
            f"writes failed from {failing[0] - restart_at:+.2f} s "
            f"to {failing[-1] - restart_at:+.2f} s"
        )
    if ok_after:
        print(f"first 201 after the restart ended: {ok_after[0] - restarted_at:+.2f} s")
    if not_ready:
        said = sorted({reason for _, reason in not_ready})
        print(
            f"/readyz 503 from {not_ready[0][0] - restart_at:+.2f} s to "
            f"{not_ready[-1][0] - restart_at:+.2f} s, saying {said}"
        )
    headers = {"Authorization": f"Bearer {drill.token}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as c:
        retried = collections.Counter(
            c.post("/api/v1/jobs", json={"type": "t"}, headers={"Idempotency-Key": key}).status_code
            for _, key, status, _ in drill.writes
            if status != 201
        )
        total = c.get("/api/v1/jobs").json()["total"]
    keys = len({key for _, key, _, _ in drill.writes})
    print(f"503s retried with their key: {dict(retried)}; jobs {total}, keys {keys}")
    env = {**os.environ, "JOBTRAIL_DATABASE_URL": url}
    audit = subprocess.run([str(servers.BIN / "jobtrail"), "audit", "verify"], env=env)
    ok = set(statuses) <= {201, 503} and total == keys and audit.returncode == 0
    print("drill:", "passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
