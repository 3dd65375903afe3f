"""`jobtrail serve --workers 2`: two processes on one SQLite file, as a user runs them.

Every request below goes on a new connection, so the kernel spreads them over both processes
(each accepts from the one listening socket); each test checks that both took a share.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.edge.auth import TokenVerifier
from tests.support import TLS, make_settings, wait_for

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """`jobtrail serve` processes on one database, and requests to them."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        settings = make_settings(tmp_path)
        verifier = TokenVerifier.from_settings(settings)
        self.tokens = {
            "alice": verifier.issue("alice", ["jobs:read", "jobs:write"], 600),
            "worker": verifier.issue("w", ["worker"], 600),
        }
        self.env = {
            **os.environ,
            "JOBTRAIL_DATABASE_URL": settings.database_url,
            "JOBTRAIL_JWT_SECRET": settings.jwt_secret or "",
        }
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, *options: str) -> tuple[str, subprocess.Popen[bytes]]:
        port = _free_port()
        command = [str(Path(sys.executable).parent / "jobtrail"), "serve", "--port", str(port)]
        log = self.tmp_path / f"serve-{port}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [*command, *options], env=self.env, stdout=sink, stderr=subprocess.STDOUT
            )
        self.started.append((process, log))
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _ready(url), timeout=60)
        return url, process

    def stop(self) -> None:
        for process, _ in self.started:
            process.terminate()
        for process, log in self.started:
            process.wait(timeout=60)
            # uvicorn ends by re-raising the signal it stopped on, once it has shut down.
            output = log.read_text()
            assert process.returncode in (0, -15), output[-2000:]
            assert "Traceback" not in output and "died" not in output, output[-4000:]

    def request(self, url: str, who: str, method: str, path: str, **kw: Any) -> httpx.Response:
        """One request on a new connection, as `who`."""
        headers = {"Authorization": f"Bearer {self.tokens[who]}", **kw.pop("headers", {})}
        with httpx.Client(verify=TLS, base_url=url, timeout=30) as client:
            return client.request(method, f"/api/v1{path}", headers=headers, **kw)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    served = Served(tmp_path)
    try:
        yield served
    finally:
        served.stop()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", verify=TLS, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _children(parent: int) -> set[int]:
    """The server processes under uvicorn's supervisor (not multiprocessing's helpers)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == parent and b"spawn_main" in (entry / "cmdline").read_bytes():
                found.add(int(entry.name))
    return found


def _cpu_ticks(pids: set[int]) -> dict[int, int]:
    spent = {}
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        spent[pid] = int(fields[11]) + int(fields[12])
    return spent


def test_workers_2_runs_two_processes_that_create_and_claim_exactly_once(served: Served):
    url, supervisor = served.start("--workers", "2")
    processes = _children(supervisor.pid)
    assert len(processes) == 2
    before = _cpu_ticks(processes)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(
                lambda n: served.request(
                    url, "alice", "POST", "/jobs", json={"type": "mp", "payload": n}
                ),
                range(200),
            )
        )
    assert [a.status_code for a in answers] == [201] * 200
    created = {a.json()["id"] for a in answers}
    assert served.request(url, "alice", "GET", "/jobs?limit=1").json()["total"] == 200

    def claim_all(_: int) -> list[str]:
        claimed = []
        body = {"types": ["mp"], "worker_id": "w", "lease_seconds": 60}
        while True:
            answer = served.request(url, "worker", "POST", "/workers/claim", json=body)
            if answer.status_code == 204:
                return claimed
            assert answer.status_code == 200, answer.text
            claimed.append(answer.json()["job"]["id"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        claims = [job for batch in pool.map(claim_all, range(8)) for job in batch]
    counted = collections.Counter(claims)
    assert set(counted) == created
    assert max(counted.values()) == 1  # no job claimed twice
    after = _cpu_ticks(processes)
    assert all(after[pid] > before[pid] for pid in processes)  # both took a share


def test_a_process_never_answers_from_a_stale_copy_of_a_job(served: Served) -> None:
    """Two processes on one file, each request sent to the one the test picks. A heartbeat
    records no event, so no version check would catch a process answering it from its own
    cached copy of the job: after a cancel recorded through A, B must answer that a cancel
    was asked."""
    a, _ = served.start()
    b, _ = served.start()
    job = served.request(a, "alice", "POST", "/jobs", json={"type": "mp.cancel"}).json()
    body = {"types": ["mp.cancel"], "worker_id": "w", "lease_seconds": 60}
    claimed = served.request(b, "worker", "POST", "/workers/claim", json=body).json()
    assert claimed["job"]["id"] == job["id"]
    lease = {"Job-Lease": claimed["lease"]["token"]}
    for n, url in enumerate([a, b] * 5):  # progress through both: both now cache the job
        answer = served.request(url, "worker", "POST", f"/jobs/{job['id']}/progress",
                                json={"completed": n}, headers=lease)  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert answer.json()["cancel_requested"] is False
    assert served.request(a, "alice", "POST", f"/jobs/{job['id']}/cancel").status_code == 200
    for url in (b, a):
        answer = served.request(url, "worker", "POST", f"/jobs/{job['id']}/heartbeat",
                                headers=lease)  # fmt: skip
        assert answer.status_code == 200
        assert answer.json()["cancel_requested"] is True
    seen = served.request(b, "alice", "GET", f"/jobs/{job['id']}").json()
    assert seen["version"] == 2 + 10 + 1  # created, started, 10 reports, cancel asked
    assert seen["progress"]["completed"] == 9


def test_a_lease_renewed_through_another_process_stays_held(served: Served) -> None:
    """A process remembers the leases its writer renewed, but only trusts such a memory until
    the expiry it knew: renewals through another process, which it never sees, must not make
    it call a held lease lost. Time passing is the scenario here: the lease is 1.5 s long and
    only B renews it, past the expiry A last knew."""
    a, _ = served.start()
    b, _ = served.start()
    job = served.request(a, "alice", "POST", "/jobs", json={"type": "mp.lease"}).json()
    body = {"types": ["mp.lease"], "worker_id": "w", "lease_seconds": 1.5}
    claimed = served.request(a, "worker", "POST", "/workers/claim", json=body).json()
    assert claimed["job"]["id"] == job["id"]
    lease = {"Job-Lease": claimed["lease"]["token"]}
    path = f"/jobs/{job['id']}/heartbeat"
    known_to_a = served.request(a, "worker", "POST", path, headers=lease).json()
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:  # only B renews, well within each lease
        answer = served.request(b, "worker", "POST", path, headers=lease)
        assert answer.status_code == 200, answer.text
        time.sleep(0.3)
    renewed = served.request(a, "worker", "POST", path, headers=lease)
    assert renewed.status_code == 200, renewed.text  # not 409 lease_lost
    assert renewed.json()["lease_expires_at"] > known_to_a["lease_expires_at"]
