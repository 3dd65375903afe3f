"""What the tenancy tests share: two owners and an admin on one server, the credentials a
caller may hold (header, cookie, stream query), and the comparison of another owner's job with
one that does not exist."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from service.edge.auth import COOKIE_NAME
from tests.service import http_clients
from tests.support import LiveServer, claim, create

SSE = {"Accept": "text/event-stream"}
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
NOT_FOUND = {"error": {"code": "not_found", "message": "Job not found.", "details": {}}}


@dataclasses.dataclass
class World:
    """Two owners of their own (`alice-<tag>`, `bob-<tag>`: the server may be shared), admin,
    and a worker."""

    server: LiveServer
    tag: str
    alice: httpx.Client
    bob: httpx.Client
    admin: httpx.Client
    worker: httpx.Client  # scope `worker` only
    stack: contextlib.ExitStack

    @property
    def alice_sub(self) -> str:
        return f"alice-{self.tag}"

    def browser(self) -> httpx.Client:
        """Alice signed in as a browser is: the session cookie, no Authorization header."""
        client = http_clients.client(self.server.url, headers=SAME_ORIGIN)
        client.cookies.set(COOKIE_NAME, self.server.token(self.alice_sub))
        return self.stack.enter_context(client)

    def by_query(self) -> httpx.Client:
        """Alice as an EventSource without cookies is: `?access_token=` on every request."""
        token = self.server.token(self.alice_sub)
        client = http_clients.client(self.server.url, params={"access_token": token})
        return self.stack.enter_context(client)

    def anonymous(self) -> httpx.Client:
        return self.stack.enter_context(http_clients.client(self.server.url))

    def running(self, owner: httpx.Client, **fields: Any) -> dict[str, Any]:
        """A job of `owner`, claimed by the worker, with a log line: (job, lease)."""
        job_type = f"run.{uuid.uuid4().hex[:12]}"
        create(owner, type=job_type, **fields)
        claimed = claim(self.worker, [job_type])
        assert claimed is not None
        headers = {"Job-Lease": claimed["lease"]["token"]}
        path = f"/api/v1/jobs/{claimed['job']['id']}/logs"
        logged = self.worker.post(path, json={"message": "a secret line"}, headers=headers)
        assert logged.status_code == 200, logged.text
        return claimed


@contextlib.contextmanager
def world_of(server: LiveServer) -> Iterator[World]:
    tag = uuid.uuid4().hex[:8]
    with contextlib.ExitStack() as stack:
        clients = [
            stack.enter_context(http_clients.bearer(server, sub, scopes))
            for sub, scopes in [
                (f"alice-{tag}", "jobs:read jobs:write"),
                (f"bob-{tag}", "jobs:read jobs:write"),
                ("root", "admin"),
                ("w-1", "worker"),
            ]
        ]
        yield World(server, tag, *clients, stack)


def send(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    params: Any = None,
    body: Any = None,
    headers: Any = None,
) -> httpx.Response:
    """The answer, read unless it is a live stream (closed unread: one never ends)."""
    request = client.build_request(method, path, params=params, json=body, headers=headers)
    response = client.send(request, stream=True)
    try:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
    finally:
        response.close()
    return response


def same_as_unknown(
    client: httpx.Client, method: str, path: str, job_id: str, **options: Any
) -> httpx.Response:
    """The answer for `job_id` in `path`, checked to be the answer for a job that never
    existed: the same status, headers that matter and body, but for the id itself."""
    unknown_id = str(uuid.uuid4())
    theirs = send(client, method, path.format(job_id=job_id), **options)
    unknown = send(client, method, path.format(job_id=unknown_id), **options)
    where = (method, path, options)
    assert theirs.status_code == unknown.status_code, (where, theirs.text, unknown.text)
    for header in ("content-type", "content-length", "allow", "www-authenticate", "set-cookie"):
        assert theirs.headers.get(header) == unknown.headers.get(header), (where, header)
    assert theirs.text.replace(job_id, "<id>") == unknown.text.replace(unknown_id, "<id>"), where
    return theirs
