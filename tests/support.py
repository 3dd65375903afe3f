"""What the service tests share: a real uvicorn server on a real database, a polling wait,
and the HTTP calls many tests make (a client's `create`, a worker's `claim` and `call`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from service.app import create_app
from service.edge.auth import TokenVerifier
from service.edge.runtime import Runtime
from service.settings import Settings
from service.streams import sse

SECRET = "test-secret-" + "x" * 32
# One TLS context for every client: each httpx client otherwise loads the CA bundle anew
# (~0.15 s on a busy machine, per client; the servers here are plain http anyway).
TLS = ssl.create_default_context()


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.005) -> Any:
    """Polls `predicate` until it returns something truthy; fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


class _Server(sse.Server):
    """The service's server, stopping as soon as it is asked to: uvicorn's main loop looks at
    `should_exit` every 0.1 s, which made every test's server stop 50 ms late on average."""

    _loop: asyncio.AbstractEventLoop | None = None
    _stopping: asyncio.Event | None = None

    async def main_loop(self) -> None:  # uvicorn's, but woken by `stop_soon` too
        self._stopping = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 0.1)

    def stop_soon(self) -> None:
        """From another thread: exit now, as uvicorn would at its next tick."""
        self.should_exit = True
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)


class LiveServer:
    """The real app under uvicorn in a thread, on an ephemeral port of 127.0.0.1."""

    def __init__(self, settings: Settings, port: int = 0) -> None:
        self.settings = settings
        self.port = port  # 0: any free one; a fixed one survives restart() (clients reconnect)
        self.verifier = TokenVerifier.from_settings(settings)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._app: Any = None

    def start(self, port: int | None = None) -> LiveServer:
        """Starts the app on `port`, else on the port the server was made with."""
        self._app = create_app(self.settings)
        port = self.port if port is None else port
        config = uvicorn.Config(
            self._app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        self._server = _Server(config)  # closes live streams first on shutdown
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        server = self._server
        wait_for(lambda: server.started or not self._thread.is_alive())  # type: ignore[union-attr]
        assert server.started, "the server did not start"
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.stop_soon()
            self._thread.join(timeout=30)
            assert not self._thread.is_alive(), "the server did not stop"
        self._server = self._thread = None

    def restart(self, *, same_port: bool = False) -> LiveServer:
        """Stops and starts the server on the same database; `same_port`: at the same address, so
        that clients reconnect to it (streams open now are closed by the stop)."""
        port = int(self.url.rpartition(":")[2]) if same_port else 0
        self.stop()
        return self.start(port)

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    @property
    def runtime(self) -> Runtime:
        """The running app's parts (writer, store), for tests that act as a worker would."""
        runtime = self._app.state.runtime
        assert isinstance(runtime, Runtime)
        return runtime

    def token(
        self, sub: str = "alice", scopes: str = "jobs:read jobs:write", ttl: int = 600
    ) -> str:
        return self.verifier.issue(sub, scopes.split(), ttl)

    def client(self, sub: str = "alice", scopes: str = "jobs:read jobs:write") -> httpx.Client:
        """A synchronous client for `sub`; close it (or use `with`)."""
        headers = {"Authorization": f"Bearer {self.token(sub, scopes)}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, verify=TLS)

    def async_client(
        self, sub: str = "alice", scopes: str = "jobs:read jobs:write"
    ) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.token(sub, scopes)}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, verify=TLS)


@contextlib.contextmanager
def two_servers(settings: Settings) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two instances of the app on one database (of `settings`), stopped on exit."""
    with contextlib.ExitStack() as stack:
        a = LiveServer(settings).start()
        stack.callback(a.stop)
        b = LiveServer(settings).start()
        stack.callback(b.stop)
        yield a, b


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now, for a server that must keep its port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base = Settings(
        database_url=f"sqlite:///{tmp_path / 'jobtrail.db'}",
        data_dir=tmp_path,
        jwt_secret=SECRET,
    )
    return dataclasses.replace(base, **overrides)


def events_table(settings: Settings) -> str:
    """The event store's own table of events on the backend of `settings` (the library's)."""
    return "jobtrail_events" if settings.is_postgres else "stored_events"


def create(
    client: httpx.Client, headers: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    """Creates a job (type `t` unless given) and returns it; anything but 201 fails the test."""
    response = client.post("/api/v1/jobs", json={"type": "t", **fields}, headers=headers)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


# The worker tests' jobs are of type `t.a` unless they say otherwise; they claim `["t.a"]`.
create_for_worker = functools.partial(create, type="t.a")


def claim(
    worker: httpx.Client, types: list[str], *, lease: float = 30, wait: float = 0, **more: Any
) -> dict[str, Any] | None:
    """A worker's claim, as an SDK-less worker makes it: the claim (job and lease), or None."""
    body = {"types": types, "worker_id": "w-test", "lease_seconds": lease, "wait_seconds": wait}
    response = worker.post("/api/v1/workers/claim", json=body | more)
    if response.status_code == 204:
        return None
    assert response.status_code == 200, response.text
    claimed: dict[str, Any] = response.json()
    return claimed


def call(
    worker: httpx.Client, claimed: dict[str, Any], action: str, body: Any = None
) -> httpx.Response:
    """A worker's call on the job it claimed (`heartbeat`, `succeed`, ...), with its lease."""
    job_id = claimed["job"]["id"]
    headers = {"Job-Lease": claimed["lease"]["token"]}
    return worker.post(f"/api/v1/jobs/{job_id}/{action}", json=body, headers=headers)
