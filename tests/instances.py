"""`jobtrail serve` as real processes on one database, for the scale-out tests: start several,
each on a port of its own, stop them (SIGTERM; each must end cleanly) or kill -9 one; follow a
stream that resumes on another instance after its own died; hold PostgreSQL's events-table lock
to put the instances' writes in a known order; run `jobtrail audit verify` on the database."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg

from service.edge.auth import TokenVerifier
from tests import sse_reader
from tests.support import SECRET, TLS, free_port, make_settings, wait_for

JOBTRAIL = str(Path(sys.executable).parent / "jobtrail")
EVENTS_TABLE = "jobtrail_events"  # the library's table of the PostgreSQL store


class Instance:
    """One `jobtrail serve` process, listening on 127.0.0.1:`port`."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.name = name
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.killed = False

    def __repr__(self) -> str:
        return f"Instance({self.name}, {self.url}, pid {self.process.pid})"

    def ready(self) -> bool:
        assert self.process.poll() is None, self.log.read_text(errors="replace")[-4000:]
        try:
            return httpx.get(f"{self.url}/healthz", verify=TLS, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """kill -9: no shutdown at all; the kernel closes its sockets, database ones included."""
        self.killed = True
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def metric(self, name: str) -> float:
        """The value of an unlabelled sample of its /metrics (`jobtrail_leases_expired_total`)."""
        for line in httpx.get(f"{self.url}/metrics", verify=TLS, timeout=10).text.splitlines():
            sample, _, value = line.partition(" ")
            if sample == name:
                return float(value)
        raise AssertionError(f"{self.name} has no metric {name}")


class Instances:
    """`jobtrail serve` processes on one database (A, B, …), started one by one; `stop()` ends
    every one still running and checks that each ended cleanly."""

    def __init__(self, tmp_path: Path, database_url: str, **env: str) -> None:
        self.tmp_path = tmp_path
        self.database_url = database_url
        settings = make_settings(tmp_path, database_url=database_url)
        self._verifier = TokenVerifier.from_settings(settings)
        self.env = {
            **os.environ,
            "JOBTRAIL_DATABASE_URL": database_url,
            "JOBTRAIL_JWT_SECRET": SECRET,
            "JOBTRAIL_DATA_DIR": str(tmp_path),
            **env,
        }
        self.all: list[Instance] = []

    def start(self, count: int = 1) -> list[Instance]:
        """Starts `count` more instances at once and waits until each answers."""
        started = []
        for _ in range(count):
            name, port = "ABCDEFGH"[len(self.all)], free_port()
            log = self.tmp_path / f"serve-{name}.log"
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    [JOBTRAIL, "serve", "--port", str(port)],
                    env=self.env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            instance = Instance(name, process, port, log)
            self.all.append(instance)
            started.append(instance)
        for instance in started:
            wait_for(instance.ready, timeout=60, interval=0.05)
        return started

    def stop(self) -> None:
        running = [i for i in self.all if not i.killed and i.process.poll() is None]
        for instance in running:
            instance.process.terminate()
        problems = []
        for instance in self.all:
            if instance.killed:
                continue
            try:
                instance.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                instance.kill()
                problems.append(f"{instance} did not stop on SIGTERM")
                continue
            output = instance.log.read_text(errors="replace")
            # uvicorn ends by re-raising the signal it stopped on, once it has shut down.
            if instance.process.returncode not in (0, -15) or "Traceback" in output:
                problems.append(
                    f"{instance} ended {instance.process.returncode}:\n{output[-4000:]}"
                )
        assert not problems, "\n".join(problems)

    def token(self, sub: str = "alice", scopes: str = "jobs:read jobs:write") -> str:
        return self._verifier.issue(sub, scopes.split(), 600)

    def client(
        self, instance: Instance, sub: str = "alice", scopes: str = "jobs:read jobs:write"
    ) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(sub, scopes)}"}
        return httpx.Client(verify=TLS, base_url=instance.url, headers=headers, timeout=30)

    def audit_verify(self) -> subprocess.CompletedProcess[str]:
        """`jobtrail audit verify` on the database: the read rows against the fold of the
        events, every job's versions in order."""
        return subprocess.run(
            [JOBTRAIL, "audit", "verify"], env=self.env, capture_output=True, text=True, timeout=120
        )


@contextlib.contextmanager
def running(tmp_path: Path, database_url: str, count: int, **env: str) -> Iterator[Instances]:
    instances = Instances(tmp_path, database_url, **env)
    try:
        instances.start(count)
        yield instances
    finally:
        instances.stop()


def events_after(client: httpx.Client, after: int, path: str = "/api/v1/events") -> list[dict]:
    """Every event the client may see after `after`, page by page."""
    found: list[dict] = []
    for _ in range(10_000):
        page = client.get(path, params={"after": after, "limit": 1000})
        assert page.status_code == 200, page.text
        body = page.json()
        found.extend(body["items"])
        after = body["next_after"]
        if not body["has_more"]:
            return found
    raise AssertionError("more than 10 million events")


def head(instance: Instance) -> int:
    """The newest event id in the store, as the instance's /readyz says."""
    return int(httpx.get(f"{instance.url}/readyz", verify=TLS, timeout=10).json()["last_event_id"])


class Follower:
    """An SSE subscriber in a thread, as a browser's EventSource: it follows `path` on the first
    of `urls`; when that connection drops (its instance died), it waits for `resume` to be set,
    then reconnects to the next of `urls` with `Last-Event-ID`, the id of the last event it got.
    It ends at `event: end`."""

    def __init__(
        self, urls: list[str], path: str, token: str, resume: threading.Event | None = None
    ) -> None:
        self.urls, self.path, self.token = urls, path, token
        self.resume = resume or threading.Event()
        self.messages: list[sse_reader.Message] = []
        self.dropped = threading.Event()
        self.resumed_after: list[int | None] = []  # the Last-Event-ID of each reconnect
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Follower:
        self._thread.start()
        return self

    @property
    def ids(self) -> list[int]:
        return [int(str(m.id)) for m in self.messages if m.event != "end"]

    @property
    def ended(self) -> bool:
        return bool(self.messages) and self.messages[-1].event == "end"

    def join(self, timeout: float = 60) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the stream did not end: {len(self.messages)} events"
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            for n, url in enumerate(self.urls):
                if n:
                    assert self.resume.wait(60), "never told to resume"
                    self.resumed_after.append(self.ids[-1] if self.ids else None)
                if self._follow(url):
                    return
                self.dropped.set()
        except BaseException as exc:  # reported by join()
            self._error = exc

    def _follow(self, url: str) -> bool:
        """True when the stream ended with `end`; False when the connection dropped."""
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        if self.ids:
            headers["Last-Event-ID"] = str(self.ids[-1])
        timeout = httpx.Timeout(30, connect=10)
        try:
            with (
                httpx.Client(verify=TLS, base_url=url, timeout=timeout) as client,
                client.stream("GET", self.path, headers=headers) as response,
            ):
                assert response.status_code == 200, response.read()
                for message in sse_reader.events(response):
                    self.messages.append(message)
                    if message.event == "end":
                        return True
        except httpx.TransportError:
            pass
        return False


# PostgreSQL: what the instances' transactions are doing, seen from the database.


def connect(database_url: str, **options: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(database_url, **options)


@contextlib.contextmanager
def events_table_locked(database_url: str) -> Iterator[None]:
    """Holds the events table's write lock, as a writer group's transaction does, until the
    block ends: every instance's next write transaction queues behind it, in the order it
    asks (PostgreSQL grants waiting lock requests first come, first served)."""
    with connect(database_url) as db:
        db.execute(f"LOCK TABLE {EVENTS_TABLE} IN EXCLUSIVE MODE")
        yield
        db.rollback()


def waiting_for_a_lock(database_url: str, query_prefix: str = "") -> list[int]:
    """The server processes of the database's sessions that wait for a lock now, whose
    statement starts with `query_prefix`."""
    with connect(database_url, autocommit=True) as db:
        rows = db.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE %s ORDER BY query_start",
            (query_prefix + "%",),
        ).fetchall()
    return [row[0] for row in rows]


def wait_until_waiting(database_url: str, count: int, query_prefix: str = "") -> list[int]:
    """Waits until `count` sessions wait for a lock (their statements starting so)."""

    def waiting() -> list[int] | None:
        found = waiting_for_a_lock(database_url, query_prefix)
        return found if len(found) >= count else None

    found: list[int] = wait_for(waiting, timeout=30, interval=0.01)
    return found


def events_table_locks(database_url: str, pid: int) -> set[str]:
    """The lock modes that server process holds on the events table."""
    with connect(database_url, autocommit=True) as db:
        rows = db.execute(
            "SELECT mode FROM pg_locks WHERE pid = %s AND granted AND relation = %s::regclass",
            (pid, EVENTS_TABLE),
        ).fetchall()
    return {row[0] for row in rows}


def session_gone(database_url: str, pid: int) -> bool:
    with connect(database_url, autocommit=True) as db:
        row = db.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return row is not None and row[0] == 0


def stored_ids(database_url: str, after: int = 0) -> list[int]:
    """The ids of the events in the event store itself (not the read models), in order."""
    with connect(database_url, autocommit=True) as db:
        rows = db.execute(
            f"SELECT notification_id FROM {EVENTS_TABLE} WHERE notification_id > %s"
            " ORDER BY notification_id",
            (after,),
        ).fetchall()
    return [row[0] for row in rows]


def until(deadline_seconds: float) -> Iterator[int]:
    """A loop's counter that stops after `deadline_seconds` (and 100,000 rounds at most)."""
    deadline = time.monotonic() + deadline_seconds
    for n in itertools.count():
        if n >= 100_000 or time.monotonic() > deadline:
            raise AssertionError(f"loop still going after {n} rounds")
        yield n
