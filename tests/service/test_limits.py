"""Limits under load, on a real `jobtrail serve` process (the connection guards live in the
server's configuration, service/edge/connections.py): slow-loris heads and bodies cut off with
408, header floods with 431, the per-owner request rate with 429 and Retry-After, and a clean
SIGTERM (the request in flight finishes, streams end cleanly, waiting claimers get 204 at once,
leases stay valid across the restart).

The timeouts are set to a second here; the clients dribble for longer than that, bounded."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.edge.auth import TokenVerifier
from service.edge.limits import OwnerRate
from tests import sse_reader
from tests.support import SECRET, TLS, free_port, wait_for

DRIBBLE_SECONDS = 0.2  # between the bytes of a slow client
LIMIT_SECONDS = 1  # the head's and the body's deadlines in these tests


@dataclass
class Serve:
    """A `jobtrail serve` process on a port of its own (same port across restarts)."""

    tmp_path: Path
    env: dict[str, str]
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Serve:
        jobtrail = Path(sys.executable).parent / "jobtrail"
        log = (self.tmp_path / "serve.log").open("ab")
        with log:
            self.process = subprocess.Popen(
                [str(jobtrail), "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._ready, timeout=30)
        return self

    def _ready(self) -> bool:
        assert self.process is not None and self.process.poll() is None, "serve exited"
        try:
            return httpx.get(f"{self.url}/healthz", verify=TLS, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.terminate()
        code = self.process.wait(timeout=30)
        self.process = None
        return code

    def client(self, sub: str, scopes: str = "jobs:read jobs:write") -> httpx.Client:
        token = TokenVerifier(algorithm="HS256", key=SECRET).issue(sub, scopes.split(), 600)
        return httpx.Client(
            verify=TLS, base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )


@contextlib.contextmanager
def serve(tmp_path: Path, **env: str) -> Iterator[Serve]:
    environment = {
        **os.environ,
        "JOBTRAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'jobtrail.db'}",
        "JOBTRAIL_JWT_SECRET": SECRET,
        **env,
    }
    server = Serve(tmp_path, environment, free_port()).start()
    try:
        yield server
    finally:
        if server.process is not None:
            server.process.kill()
            server.process.wait(timeout=30)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory) -> Iterator[Serve]:
    with serve(
        tmp_path_factory.mktemp("guarded"),
        JOBTRAIL_LIMIT_HEADER_SECONDS=str(LIMIT_SECONDS),
        JOBTRAIL_LIMIT_BODY_SECONDS=str(LIMIT_SECONDS),
        JOBTRAIL_LIMIT_REQUESTS_PER_SECOND="0.001",  # a token per 1000 s: the burst is all
        JOBTRAIL_LIMIT_REQUEST_BURST="5",
    ) as server:
        yield server


def read_answer(sock: socket.socket) -> tuple[int, dict, bool]:
    """The status and JSON body the server sent, and whether it then closed the connection."""
    sock.settimeout(10)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed inside the body"
        body += chunk
    closed = sock.recv(1) == b""
    return status, json.loads(body), closed


def dribble(sock: socket.socket, data: bytes) -> bool:
    """Sends `data` a byte every DRIBBLE_SECONDS until the server answers; True if it answered
    before everything was sent (bounded: the data's length times the interval)."""
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return True
        answered, _, _ = select.select([sock], [], [], DRIBBLE_SECONDS)
        if answered:
            return True
    return False


def test_a_connection_that_sends_nothing_is_answered_408_and_closed(guarded):
    with socket.create_connection(("127.0.0.1", guarded.port)) as sock:
        status, body, closed = read_answer(sock)
    assert (status, body["error"]["code"], closed) == (408, "request_timeout", True)


def test_headers_dribbled_slower_than_the_limit_are_cut_off_with_408(guarded):
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 40 + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", guarded.port)) as sock:
        assert dribble(sock, head), "the server waited for the whole dribbled head"
        status, body, closed = read_answer(sock)
    assert (status, body["error"]["code"], closed) == (408, "request_timeout", True)


def test_a_header_flood_is_answered_431_and_closed(guarded):
    flood = b"".join(b"X-Flood-%d: %s\r\n" % (n, b"v" * 1000) for n in range(100))
    with socket.create_connection(("127.0.0.1", guarded.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + flood + b"\r\n")
        status, body, closed = read_answer(sock)
    assert (status, body["error"]["code"], closed) == (
        431,
        "request_header_fields_too_large",
        True,
    )


def test_a_body_dribbled_slower_than_the_limit_is_a_408_and_writes_nothing(guarded):
    with guarded.client("dribbler") as client:
        token = client.headers["Authorization"]
        body = json.dumps({"type": "t", "name": "x" * 40}).encode()
        head = (
            b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: " + token.encode() + b"\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        with socket.create_connection(("127.0.0.1", guarded.port)) as sock:
            sock.sendall(head + body[:5])
            assert dribble(sock, body[5:]), "the server waited for the whole dribbled body"
            status, answer, closed = read_answer(sock)
        assert (status, answer["error"]["code"], closed) == (408, "request_timeout", True)
        assert answer["error"]["details"] == {"limit_seconds": LIMIT_SECONDS}
        assert client.get("/api/v1/jobs").json()["total"] == 0


def test_a_normal_client_on_a_kept_alive_connection_is_not_cut_off(guarded):
    with guarded.client("patient") as client:
        for _ in range(3):  # three requests on one connection
            assert client.get("/healthz").status_code == 200


def test_an_owner_over_its_request_rate_gets_429_with_retry_after_and_writes_nothing(guarded):
    with guarded.client("hasty") as hasty, guarded.client("calm") as calm:
        answers = [hasty.post("/api/v1/jobs", json={"type": "t"}) for _ in range(7)]
        statuses = [a.status_code for a in answers]
        assert statuses == [201] * 5 + [429] * 2  # the burst, then refused
        refused = answers[-1]
        assert refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
        assert calm.get("/api/v1/jobs").status_code == 200  # another owner is unaffected
        seen = calm.get("/api/v1/jobs", headers={"Authorization": ""})  # no token: 401 first
        assert seen.status_code == 401
    # Only the admitted creates were written (read with an admin token of its own budget).
    with guarded.client("auditor", "jobs:read admin") as admin:
        assert admin.get("/api/v1/jobs").json()["total"] == 5


def test_the_rate_refills_at_its_rate_up_to_its_burst():
    now = [0.0]
    rate = OwnerRate(2.0, 3, clock=lambda: now[0])
    assert [rate.admit("a") for _ in range(4)] == [None, None, None, 1]
    now[0] += 0.5  # one token back
    assert (rate.admit("a"), rate.admit("a")) == (None, 1)
    now[0] += 100  # never more than the burst
    assert [rate.admit("a") for _ in range(4)] == [None, None, None, 1]
    assert rate.admit("b") is None  # owners have buckets of their own


def test_sigterm_finishes_the_request_in_flight_ends_streams_and_keeps_leases(tmp_path):
    with serve(tmp_path) as server:
        with server.client("alice") as alice, server.client("w-1", "worker") as worker:
            job = alice.post("/api/v1/jobs", json={"type": "t.a"}).json()
            claimed = worker.post(
                "/api/v1/workers/claim", json={"types": ["t.a"], "lease_seconds": 600}
            ).json()
            lease = claimed["lease"]["token"]

            streamed: list[sse_reader.Message] = []
            clean_end: list[bool] = []

            def follow() -> None:
                with alice.stream("GET", "/api/v1/events", params={"stream": "true"}) as answer:
                    streamed.extend(sse_reader.events(answer))  # until the server ends it
                clean_end.append(True)  # no error: the chunked stream was terminated properly

            stream = threading.Thread(target=follow)
            stream.start()
            wait_for(lambda: len(streamed) >= 2)  # created, started: live now
            waiting: list[int] = []
            claimer = threading.Thread(
                target=lambda: waiting.append(
                    worker.post(
                        "/api/v1/workers/claim", json={"types": ["t.b"], "wait_seconds": 30}
                    ).status_code
                )
            )
            claimer.start()

            # A create in flight: its head and half its body sent when SIGTERM arrives.
            body = json.dumps({"type": "t", "name": "in flight"}).encode()
            token = alice.headers["Authorization"].encode()
            with socket.create_connection(("127.0.0.1", server.port)) as sock:
                sock.sendall(
                    b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                    b"\r\nAuthorization: "
                    + token
                    + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
                    + body[:10]
                )
                wait_for(lambda: _metric_waiting_claims(server) == 1)
                assert server.process is not None
                server.process.send_signal(signal.SIGTERM)
                sock.sendall(body[10:])
                status, created, _ = read_answer(sock)
            assert status == 201, created

            claimer.join(timeout=10)  # answered at once, not after its 30 s wait
            stream.join(timeout=10)
            assert waiting == [204]
            assert clean_end == [True]
            assert server.process is not None
            # uvicorn, its shutdown done, re-raises the signal: ended by SIGTERM, not killed.
            assert server.process.wait(timeout=30) == -signal.SIGTERM
            server.process = None
            assert "Traceback" not in (tmp_path / "serve.log").read_text()

        server.start()  # the same database and port
        with server.client("alice") as alice, server.client("w-1", "worker") as worker:
            assert alice.get(f"/api/v1/jobs/{created['id']}").status_code == 200
            beat = worker.post(f"/api/v1/jobs/{job['id']}/heartbeat", headers={"Job-Lease": lease})
            assert beat.status_code == 200, beat.text  # the lease outlived the restart


def _metric_waiting_claims(server: Serve) -> int:
    """Claims waiting in the server, from its metrics."""
    text = httpx.get(f"{server.url}/metrics", verify=TLS, timeout=5).text
    for line in text.splitlines():
        if line.startswith("jobtrail_worker_claims_waiting "):
            return int(float(line.split()[1]))
    return 0
