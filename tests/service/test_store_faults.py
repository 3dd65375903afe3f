"""The store's faults, each made for real while the service runs: the SQLite file made
immutable (`chattr +i`: chmod denies root nothing), the disk full (a size-capped tmpfs the test
mounts and fills), the database locked by another process beyond the lock timeout, and on
PostgreSQL a table locked by another session and a restart (every backend of the database
terminated while requests are in flight, new connections refused for a while).

Meanwhile: writes answer 503 `unavailable` with `Retry-After` and a `reason`, reads that can
still be served answer 200, `/readyz` answers 503 saying what is wrong; nothing a 503 answered
is in the store; once the fault is gone the same process serves writes again, and the read
models still equal the fold of the events (`audit verify`)."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from service.store import verification
from tests.support import TLS, LiveServer, create, make_settings, wait_for

READ_ONLY, DISK_FULL, LOCKED = "database is read-only", "disk full", "database locked"
UNREACHABLE = "database unreachable"


def assert_unavailable(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("unavailable", {"reason": reason})
    assert int(response.headers["retry-after"]) >= 1


def readiness(live: LiveServer) -> tuple[int, dict]:
    response = httpx.get(f"{live.url}/readyz", verify=TLS, timeout=30)
    return response.status_code, response.json()


def wait_until_ready(live: LiveServer, *, reason: str | None) -> dict:
    """Waits for /readyz to say `reason` (503), or ok (200) when `reason` is None."""

    def says() -> dict | None:
        status, body = readiness(live)
        expected = (503, "unavailable") if reason else (200, "ok")
        if (status, body["status"], body.get("reason")) == (*expected, reason):
            return body
        return None

    return wait_for(says, timeout=15, interval=0.05)


def check_recovered(live: LiveServer, client: httpx.Client, job: dict, jobs: int) -> None:
    """The fault is gone: the next write succeeds, and then the service is ready again;
    nothing refused was written; the read models equal the fold of the events."""
    create(client, name="after")
    assert readiness(live)[0] == 200
    assert client.get("/api/v1/jobs").json()["total"] == jobs + 1
    got = client.get(f"/api/v1/jobs/{job['id']}").json()
    assert (got["name"], got["version"]) == (job["name"], job["version"])
    assert verification.verify(live.runtime.store) == []


def refused_writes(client: httpx.Client, job: dict, reason: str) -> None:
    """A create and a change of an existing job, each a 503 saying `reason`."""
    assert_unavailable(client.post("/api/v1/jobs", json={"type": "t", "name": "refused"}), reason)
    renamed = client.patch(f"/api/v1/jobs/{job['id']}", json={"name": "refused"})
    assert_unavailable(renamed, reason)


def still_readable(client: httpx.Client, job: dict, jobs: int) -> None:
    assert client.get("/api/v1/jobs").json()["total"] == jobs
    got = client.get(f"/api/v1/jobs/{job['id']}")
    assert got.status_code == 200
    assert got.json()["name"] == job["name"]
    assert client.get(f"/api/v1/jobs/{job['id']}/events").status_code == 200


@contextlib.contextmanager
def serving(settings) -> Iterator[tuple[LiveServer, httpx.Client]]:
    live = LiveServer(settings).start()
    try:
        with live.client("alice") as client:
            yield live, client
    finally:
        live.stop()


# SQLite.


@contextlib.contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """The files immutable (`chattr +i`): no process may write them, root included, through
    a descriptor opened before too. (Not the `-shm` file: SQLite maps it, and a write to a
    mapped immutable page is a SIGBUS that kills the process.)"""
    done: list[Path] = []
    try:
        for path in paths:
            made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
            if made.returncode != 0:
                pytest.skip(f"chattr +i is not permitted here: {made.stderr.strip()}")
            done.append(path)
        yield
    finally:
        for path in done:
            subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_database_answers_503_until_it_is_writable_again(tmp_path):
    with serving(make_settings(tmp_path)) as (live, alice):
        job = create(alice, name="before")
        db = tmp_path / "jobtrail.db"
        with immutable(db, Path(f"{db}-wal")):
            # The first write on a connection opened before meets the file's refusal as an
            # I/O error; from then on SQLite says read-only. Either is this one fault.
            first = alice.post("/api/v1/jobs", json={"type": "t"})
            assert first.status_code == 503, first.text
            refused_writes(alice, job, READ_ONLY)
            still_readable(alice, job, 1)
            body = wait_until_ready(live, reason=READ_ONLY)
            assert body["last_event_id"] == 1  # readable: the numbers are there
        check_recovered(live, alice, job, 1)


@contextlib.contextmanager
def size_capped_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` (made), unmounted afterwards."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=True)  # still open: detach it


def fill(disk: Path) -> Path:
    """Fills the file system with one file until it has no byte left; returns the file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    chunk = b"\0" * (1 << 20)
    try:
        for _ in range(1000):  # bounded: the disk is a few MiB
            try:
                os.write(fd, chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                return filler
    finally:
        os.close(fd)
    raise AssertionError("the disk never filled up")


def test_a_full_disk_answers_503_until_space_is_freed(tmp_path):
    with size_capped_disk(tmp_path / "disk", "16m") as disk:
        with serving(make_settings(disk)) as (live, alice):
            job = create(alice, name="before")
            filler = fill(disk)
            refused_writes(alice, job, DISK_FULL)
            # A large write too (a log page's worth of pages), which cannot fit anywhere.
            big = alice.post("/api/v1/jobs", json={"type": "t", "payload": {"x": "y" * 200_000}})
            assert_unavailable(big, DISK_FULL)
            still_readable(alice, job, 1)
            wait_until_ready(live, reason=DISK_FULL)
            filler.unlink()
            check_recovered(live, alice, job, 1)


HOLD_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
sys.stdin.read()  # until the test closes our stdin
db.execute("ROLLBACK")
"""


@contextlib.contextmanager
def locked_by_another_process(db: Path) -> Iterator[None]:
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdin is not None and holder.stdout is not None
        try:
            assert holder.stdout.readline() == "held\n"
            yield
        finally:
            holder.stdin.close()  # it rolls back and ends
            try:
                holder.wait(timeout=10)
            finally:
                if holder.poll() is None:
                    holder.kill()


def test_a_database_locked_beyond_the_timeout_answers_503_until_released(tmp_path):
    settings = make_settings(tmp_path, lock_timeout_seconds=1)
    with serving(settings) as (live, alice):
        job = create(alice, name="before")
        with locked_by_another_process(tmp_path / "jobtrail.db"):
            refused_writes(alice, job, LOCKED)
            still_readable(alice, job, 1)
            wait_until_ready(live, reason=LOCKED)
        check_recovered(live, alice, job, 1)


# PostgreSQL.


@pytest.mark.postgres
def test_a_table_locked_by_another_session_answers_503_until_released(pg_url, tmp_path):
    settings = make_settings(tmp_path, database_url=pg_url, lock_timeout_seconds=1)
    with serving(settings) as (live, alice):
        job = create(alice, name="before")
        locker = psycopg.connect(pg_url)  # a transaction held open by another session
        try:
            locker.execute("LOCK TABLE jobtrail_events IN ACCESS EXCLUSIVE MODE")
            refused_writes(alice, job, LOCKED)
            still_readable(alice, job, 1)
            wait_until_ready(live, reason=LOCKED)
        finally:
            locker.rollback()
            locker.close()
        check_recovered(live, alice, job, 1)


@contextlib.contextmanager
def restarting(pg_server, pg_url: str) -> Iterator[int]:
    """What clients see of a restart of the server (the suite shares the machine's server,
    so it is not restarted): every connection to the database dropped, new ones refused
    until the block ends. Yields how many connections were dropped."""
    dbname = pg_url.rpartition("/")[2]
    name = sql.Identifier(dbname)
    with pg_server.admin() as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(name))
        try:
            dropped = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            ).fetchall()
            yield len(dropped)
        finally:
            admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(name))


@pytest.mark.postgres
def test_readyz_says_the_database_is_unreachable_before_any_write_meets_it(
    pg_server, pg_url, tmp_path
):
    with serving(make_settings(tmp_path, database_url=pg_url)) as (live, alice):
        create(alice)
        with restarting(pg_server, pg_url):
            status, body = readiness(live)  # the store's read fails, once, not retried
            assert (status, body["reason"], body["last_event_id"]) == (503, UNREACHABLE, None)
        wait_until_ready(live, reason=None)


@pytest.mark.postgres
def test_a_postgres_restart_mid_run_answers_503_then_recovers(pg_server, pg_url, tmp_path):
    """Writes in flight when the connections drop, and after: each answers 201 or 503, none
    hangs or fails otherwise. A create whose connection dropped during its commit may or may
    not have committed (no client can know): each 503 is retried afterwards with its
    Idempotency-Key, and then every key names exactly one job."""
    settings = make_settings(tmp_path, database_url=pg_url)
    with serving(settings) as (live, alice):
        create(alice, name="before")
        answers: dict[str, int] = {}
        reasons: set[str] = set()
        stop = threading.Event()

        def write(n: int) -> None:
            with live.client("alice") as client:
                for i in range(300):  # bounded; stops early when told
                    if stop.is_set():
                        return
                    key = f"w{n}-{i}"
                    response = client.post(
                        "/api/v1/jobs", json={"type": "t"}, headers={"Idempotency-Key": key}
                    )
                    answers[key] = response.status_code
                    if response.status_code == 503:
                        reasons.add(response.json()["error"]["details"]["reason"])
                        assert response.headers["retry-after"] == "1"

        writers = [threading.Thread(target=write, args=(n,)) for n in range(3)]
        for thread in writers:
            thread.start()
        try:
            wait_for(lambda: len(answers) >= 10)  # writing, and requests in flight
            with restarting(pg_server, pg_url) as dropped:
                assert dropped > 0
                wait_for(lambda: 503 in answers.values())
                wait_until_ready(live, reason=UNREACHABLE)
            seen = len(answers)
            wait_for(lambda: len(answers) >= seen + 10)  # writes go through again
        finally:
            stop.set()
            for thread in writers:
                thread.join(timeout=30)
        assert set(answers.values()) <= {201, 503}, answers
        assert reasons == {UNREACHABLE}
        wait_until_ready(live, reason=None)
        for key, status in answers.items():
            if status == 503:  # retried: created now (201), or it had committed (200)
                again = alice.post(
                    "/api/v1/jobs", json={"type": "t"}, headers={"Idempotency-Key": key}
                )
                assert again.status_code in (200, 201), again.text
        assert alice.get("/api/v1/jobs").json()["total"] == len(answers) + 1
        assert verification.verify(live.runtime.store) == []
