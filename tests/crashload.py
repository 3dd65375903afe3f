"""Steady mixed load against a real `jobtrail serve` process that the test kills at will.

`Served` runs the server as a user does (`jobtrail serve`, a subprocess) on a fixed port, so
that clients reconnect to each new incarnation. The load runs in threads of the test process,
over real HTTP: `Creator`s create jobs (each with an Idempotency-Key), `Worker`s claim them
and report progress and log lines, then the outcome. Every call is sent again after a
connection error until some answer comes; only a 2xx counts, and it goes into the `Ledger` as
an acknowledged write, named by what the store must then hold: the job id of a create, the
unique `message` of a progress report or a log line, the job id of a success.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import itertools
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from projections import documents
from service.edge.auth import TokenVerifier
from service.store import export
from tests.support import free_port, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

    from service.settings import Settings
    from service.store.base import EventStore

JOBTRAIL = str(Path(sys.executable).parent / "jobtrail")
ROOT = Path(__file__).parents[1]
_BACKOFF = 0.1  # between attempts while the server is down: it restarts in a second or more
_PACE = 0.02  # between a worker's calls: steady load, not as much as the server can take
_CREATE_PACE = 0.1  # between a creator's creates: about what the workers keep up with


@functools.cache
def tls() -> ssl.SSLContext:
    """One TLS context for every client of the test (plain HTTP to 127.0.0.1 never uses it,
    but httpx builds one per client otherwise, loading the CA bundle: 50-150 ms each)."""
    return ssl.create_default_context()


def transport() -> httpx.HTTPTransport:
    return httpx.HTTPTransport(verify=tls())


class Served:
    """`jobtrail serve` on one database and one port, started again after each kill."""

    def __init__(self, settings: Settings, tmp_path: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.verifier = TokenVerifier.from_settings(settings)
        self.log = tmp_path / "serve.log"
        self.env = {
            **os.environ,
            "JOBTRAIL_DATABASE_URL": settings.database_url,
            "JOBTRAIL_JWT_SECRET": settings.jwt_secret or "",
            "JOBTRAIL_DATA_DIR": str(tmp_path),
            "PYTHONPATH": str(ROOT),  # `jobtrail worker --handlers tests.crashload:…`
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.synchronous: list[str] = []  # JOBTRAIL_SQLITE_SYNCHRONOUS of each incarnation
        self.starts = 0
        self.start_seconds: list[float] = []  # how long each start took, to the first answer
        # One client for the health probes: a new one each time costs more than the probe.
        self._probe = httpx.Client(base_url=self.url, timeout=1, transport=transport())

    def token(self, sub: str, scopes: str = "jobs:read jobs:write") -> str:
        return self.verifier.issue(sub, scopes.split(), 3600)

    def client(self, token: str) -> httpx.Client:
        """A client of the API as the token's holder (no retries: the server is up)."""
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.Client(
            base_url=f"{self.url}/api/v1", headers=headers, timeout=30, transport=transport()
        )

    def start(self, synchronous: str = "") -> None:
        """Starts an incarnation; `synchronous`: its JOBTRAIL_SQLITE_SYNCHRONOUS, if given."""
        assert self.process is None
        env = self.env | ({"JOBTRAIL_SQLITE_SYNCHRONOUS": synchronous} if synchronous else {})
        self.synchronous.append(synchronous)
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [JOBTRAIL, "serve", "--port", str(self.port)],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        process, began = self.process, time.monotonic()
        wait_for(lambda: process.poll() is not None or self._healthy(), timeout=60, interval=0.05)
        assert process.poll() is None, self.log.read_text()[-3000:]
        self.start_seconds.append(time.monotonic() - began)

    def _healthy(self) -> bool:
        try:
            return self._probe.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def close(self) -> None:
        """Kills the server if it runs; closes the probe's client."""
        if self.process is not None:
            self.kill()
        self._probe.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind, as a crash or the OOM killer."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        """SIGTERM, and the clean exit it must lead to."""
        if self.process is None:
            return
        process, self.process = self.process, None
        process.terminate()
        process.wait(timeout=60)
        assert process.returncode in (0, -15), self.log.read_text()[-3000:]

    def jobtrail(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A `jobtrail` command against the same store (e.g. `audit verify`)."""
        return subprocess.run(
            [JOBTRAIL, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        """A `jobtrail` process left running (e.g. `worker`); its output goes to the log."""
        with self.log.open("ab") as sink:
            return subprocess.Popen(
                [JOBTRAIL, *args], env=self.env, stdout=sink, stderr=subprocess.STDOUT
            )


@dataclass
class Ledger:
    """What the server acknowledged (a 2xx), and every other answer that came."""

    created: dict[str, str] = field(default_factory=dict)  # idempotency key → job id
    messages: set[str] = field(default_factory=set)  # of progress reports and log lines
    succeeded: set[str] = field(default_factory=set)  # job ids
    answers: collections.Counter[str] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    markers: Iterator[int] = field(default_factory=itertools.count)  # unique message numbers

    @property
    def acknowledged(self) -> int:
        return len(self.created) + len(self.messages) + len(self.succeeded)

    def snapshot(self) -> tuple[set[str], set[str], set[str]]:
        with self.lock:
            return set(self.created.values()), set(self.messages), set(self.succeeded)

    def note(self, what: str, response: httpx.Response) -> None:
        with self.lock:
            self.answers[f"{what} {response.status_code}"] += 1


class Stopped(Exception):
    """The test gave up on the load while a call was still unanswered."""


class Caller:
    """One thread's HTTP client: sends a call again after a connection error until an answer
    comes (a new server incarnation answers it), unless told to stop meanwhile."""

    def __init__(self, served: Served, token: str, ledger: Ledger) -> None:
        self.abort = threading.Event()  # the test is failing: give up, answered or not
        self.ledger = ledger
        self.client = httpx.Client(
            base_url=f"{served.url}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(30, connect=2),
            transport=transport(),
        )

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        while True:
            if self.abort.is_set():
                raise Stopped()
            try:
                response = self.client.request(method, path, **kwargs)
            except httpx.TransportError:
                time.sleep(_BACKOFF)
                continue
            if response.status_code == 503:  # the store was briefly unreachable: again
                self.ledger.note(path.rpartition("/")[2], response)
                time.sleep(_BACKOFF)
                continue
            return response

    def close(self) -> None:
        self.client.close()


class Creator(threading.Thread):
    """Creates jobs of `job_type`, one after the other, each with its own Idempotency-Key."""

    def __init__(self, served: Served, ledger: Ledger, job_type: str, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.stop = threading.Event()  # after the create under way
        self.caller = Caller(served, served.token("alice"), ledger)
        self.ledger, self.job_type = ledger, job_type
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for n in itertools.count():
                if self.stop.is_set():
                    return
                key = f"{self.name}-{n}"
                body = {"type": self.job_type, "payload": {"n": n}, "max_attempts": 20}
                response = self.caller.send(
                    "POST", "/jobs", json=body, headers={"Idempotency-Key": key}
                )
                self.ledger.note("create", response)
                assert response.status_code in (200, 201), response.text
                with self.ledger.lock:
                    self.ledger.created[key] = response.json()["id"]
                time.sleep(_CREATE_PACE)
        except Stopped:
            pass
        except BaseException as exc:
            self.error = exc
        finally:
            self.caller.close()


class Worker(threading.Thread):
    """Claims jobs of its types; for each, `steps` progress reports and log lines, then
    success. `steps` None: report until `finish` is set, with a long lease (jobs that outlive
    every kill). A 409 (the short lease lapsed while the server was down, and the job went back
    to the queue) drops the job: another claim takes it up again, after the retry's backoff."""

    def __init__(
        self, served: Served, ledger: Ledger, types: list[str], name: str, steps: int | None
    ) -> None:
        super().__init__(name=name, daemon=True)
        # finish: end the endless jobs; stop: claim no more (after the job under way).
        self.stop, self.finish = threading.Event(), threading.Event()
        self.caller = Caller(served, served.token(name, "worker"), ledger)
        self.ledger, self.types, self.steps = ledger, types, steps
        self.lease = 3.0 if steps is not None else 120.0
        self.holding: str | None = None  # the job under way
        self.error: BaseException | None = None

    def run(self) -> None:
        body = {"types": self.types, "worker_id": self.name, "lease_seconds": self.lease}
        try:
            while not self.stop.is_set():
                response = self.caller.send(
                    "POST", "/workers/claim", json=body | {"wait_seconds": 0.2}
                )
                self.ledger.note("claim", response)
                if response.status_code == 200:
                    self._work(response.json())
                else:
                    assert response.status_code == 204, response.text
        except Stopped:
            pass
        except BaseException as exc:
            self.error = exc
        finally:
            self.caller.close()

    def _work(self, claimed: dict[str, Any]) -> None:
        self.holding = claimed["job"]["id"]
        try:
            self._steps(claimed)
        finally:
            self.holding = None

    def _steps(self, claimed: dict[str, Any]) -> None:
        job_id = claimed["job"]["id"]
        lease = {"Job-Lease": claimed["lease"]["token"]}
        for step in itertools.count(1):
            if self.steps is not None and step > self.steps:
                break
            if self.steps is None:
                if self.finish.is_set():
                    break
                time.sleep(_PACE)  # the job outlives every kill
            for action, key in (("progress", "message"), ("logs", "message")):
                marker = f"{job_id[:8]}-{next(self.ledger.markers)}"
                response = self.caller.send(
                    "POST", f"/jobs/{job_id}/{action}", json={key: marker}, headers=lease
                )
                if not self._acknowledged(action, response):
                    return
                with self.ledger.lock:
                    self.ledger.messages.add(marker)
                time.sleep(_PACE)
        response = self.caller.send(
            "POST", f"/jobs/{job_id}/succeed", json={"result": {"steps": step}}, headers=lease
        )
        if self._acknowledged("succeed", response):
            with self.ledger.lock:
                self.ledger.succeeded.add(job_id)

    def _acknowledged(self, action: str, response: httpx.Response) -> bool:
        self.ledger.note(action, response)
        if response.status_code == 409:  # lease lost: lapsed, or already succeeded (resent)
            return False
        assert response.status_code == 200, response.text
        return True


def stored_events(store: EventStore, after: int = 0) -> list[dict[str, Any]]:
    """The events after id `after` in the event store, as the API renders them, in id order."""
    return [documents.event_document(r.position, r.event) for r in export.recorded(store, after)]


class Found:
    """What the event store was seen to hold, read a little more each time (`read`)."""

    def __init__(self) -> None:
        self.last = 0
        self.created: set[str] = set()
        self.messages: set[str] = set()
        self.succeeded: set[str] = set()

    def read(self, events: list[dict[str, Any]]) -> Found:
        for event in events:
            self.last = max(self.last, event["id"])
            if event["type"] == "created":
                self.created.add(event["job_id"])
            elif event["type"] == "succeeded":
                self.succeeded.add(event["job_id"])
            elif event["type"] == "progress":
                self.messages.add(event["data"]["message"])
            elif event["type"] == "log":
                self.messages.add(event["message"])
        return self

    def missing(self, ledger: Ledger) -> list[str]:
        """Each acknowledged write that the store was not seen to hold."""
        created, messages, succeeded = ledger.snapshot()
        return [
            *(f"created {job}" for job in sorted(created - self.created)),
            *(f"message {m}" for m in sorted(messages - self.messages)),
            *(f"succeeded {job}" for job in sorted(succeeded - self.succeeded)),
        ]


# The killed worker's handler: `jobtrail worker --handlers tests.crashload:HANDLERS`.


async def stall_first_attempt(job: Any) -> dict[str, int]:
    """Reports once, then, on the first attempt, waits forever: the test kills the worker
    there. A later attempt finishes."""
    await job.progress(percent=50, message=f"attempt {job.attempt} {os.getpid()}")
    if job.attempt == 1:
        await asyncio.Event().wait()
    return {"attempt": job.attempt}


HANDLERS = {"crash.stall": stall_first_attempt}
