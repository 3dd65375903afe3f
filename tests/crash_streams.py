"""Subscribers that follow a server the test kills: each records every event it is sent, in the
order it came, so that the test can hold the list against the event store's.

`StreamFollower` resumes by itself (`Last-Event-ID`: the last id it received) and drops
nothing it receives, so that an event sent twice or out of order shows. The SDK's followers
(`Client.watch_all`, `Client.watch`) are followed as a user would, through their own resume.
A global stream never ends: the followers stop at the `created` event of a job of type
`SENTINEL`, which the test creates once everything else has been written.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import httpx

from service.sdk.client import Client
from tests import sse_reader
from tests.crashload import transport

if TYPE_CHECKING:
    from tests.crashload import Served

SENTINEL = "crash.sentinel"
_BACKOFF = 0.05


def _sdk_client(url: str, token: str) -> Client:
    # A restart on a busy machine can take several seconds: the SDK must not give up before.
    return Client(url, token, timeout=60, reconnect_timeout=300, transport=transport())


def is_sentinel(event: dict[str, Any]) -> bool:
    return event["type"] == "created" and event["data"]["type"] == SENTINEL


class StreamFollower(threading.Thread):
    """A stream of `path` (with `params`) from its first event, reconnecting after every drop
    with the id of the last event received."""

    def __init__(self, served: Served, token: str, path: str, name: str, **params: str) -> None:
        super().__init__(name=name, daemon=True)
        self.stop = threading.Event()
        self.url, self.token, self.path, self.params = served.url, token, path, params
        self.received: list[dict[str, Any]] = []
        self.connections = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        auth = {"Authorization": f"Bearer {self.token}"}
        timeout = httpx.Timeout(60, connect=2)
        try:
            with httpx.Client(
                base_url=self.url, headers=auth, timeout=timeout, transport=transport()
            ) as client:
                while not self.stop.is_set():
                    if self._follow(client):
                        return
                    time.sleep(_BACKOFF)
        except BaseException as exc:
            self.error = exc

    def _follow(self, client: httpx.Client) -> bool:
        """One connection; True once the sentinel came."""
        headers = {"Accept": "text/event-stream"}
        if self.received:
            headers["Last-Event-ID"] = str(self.received[-1]["id"])
        params = {"stream": "true", "after": "0", **self.params}
        try:
            with client.stream("GET", self.path, params=params, headers=headers) as response:
                if response.status_code == 503:
                    return False
                assert response.status_code == 200, response.read()
                self.connections += 1
                for message in sse_reader.events(response):
                    event = message.json
                    assert message.id == str(event["id"]), (message.id, event)
                    self.received.append(event)
                    if is_sentinel(event):
                        return True
        except httpx.TransportError:
            pass  # the server was killed: reconnect
        return False


class SdkFollower(threading.Thread):
    """`Client.watch_all(**filters)` until the sentinel (the SDK resumes by itself)."""

    def __init__(self, served: Served, token: str, name: str, **filters: Any) -> None:
        super().__init__(name=name, daemon=True)
        self.url, self.token, self.filters = served.url, token, filters
        self.received: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.client: Client | None = None

    def run(self) -> None:
        try:
            with _sdk_client(self.url, self.token) as self.client:
                for event in self.client.watch_all(**self.filters):
                    self.received.append(event.raw)
                    if is_sentinel(event.raw):
                        return
        except BaseException as exc:
            self.error = exc


class SdkWatcher(threading.Thread):
    """`Client.watch(job_id)` to the job's end: its events, its final state, how often it
    connected."""

    def __init__(self, served: Served, token: str, job_id: str) -> None:
        super().__init__(name=f"watch-{job_id[:8]}", daemon=True)
        self.url, self.token, self.job_id = served.url, token, job_id
        self.received: list[dict[str, Any]] = []
        self.final: dict[str, Any] | None = None
        self.connections = 0
        self.error: BaseException | None = None
        self.client: Client | None = None

    def run(self) -> None:
        try:
            with _sdk_client(self.url, self.token) as self.client:
                watch = self.client.watch(self.job_id)
                for event in watch:
                    self.received.append(event.raw)
                    self.connections = watch.connections
                self.connections = watch.connections
                self.final = None if watch.final is None else watch.final.raw
        except BaseException as exc:
            self.error = exc
