"""Scopes over real HTTP: each `/api/v1` route needs the scope API.md's table gives it, no more
and no less. A token without it gets 403 before anything else is looked at; a token with only
it gets past (whatever the route then says). The table, the router, the served OpenAPI
document and the server must agree: a route added without a line in API.md fails here."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.edge import routing
from service.openapi import document
from tests.service import http_clients
from tests.support import LiveServer, create

API_MD = Path(__file__).parents[3] / "docs" / "API.md"
JOB = str(uuid.UUID(int=11, version=4))
SSE = {"Accept": "text/event-stream"}
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}

# The tokens tried on every route: each single scope, none, a user's default, and admin.
TOKENS = {
    "none": "",
    "jobs:read": "jobs:read",
    "jobs:write": "jobs:write",
    "worker": "worker",
    "user": "jobs:read jobs:write",
    "admin": "admin",
}


def documented_scopes() -> dict[tuple[str, str], str]:
    """API.md's scope table, `(method, path)` → scope, with paths as the router writes them."""
    rows = re.findall(r"^\s*\| `(\w+) (/api/v1/\S*)` \| `([\w:]+)` \|$", API_MD.read_text(), re.M)
    table = {(method, path.replace("{id}", "{job_id}")): scope for method, path, scope in rows}
    assert len(table) == len(rows), "a route is listed twice in API.md's scope table"
    return table


def api_routes() -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in routing.routes()
        if route.path.startswith("/api/v1")
        for method in route.methods or ()
        if method != "HEAD"
    }


def test_every_api_route_has_exactly_one_documented_scope():
    assert set(documented_scopes()) == api_routes()


def test_the_served_openapi_document_names_the_same_scopes():
    served = {
        (method.upper(), path.replace("{id}", "{job_id}")): operation.get("x-required-scope")
        for path, operations in document.document()["paths"].items()
        for method, operation in operations.items()
        if path.startswith("/api/v1")
    }
    assert served == documented_scopes()


def _requests(method: str, path: str) -> list[tuple[str, dict[str, str]]]:
    """The route's request with an unknown job id and no body (nothing it can write), and its
    SSE form where it has one."""
    target = path.replace("{job_id}", JOB)
    forms = [(target, {})]
    if method == "GET" and target.endswith("/events"):
        forms.append((target, SSE))
    return forms


@pytest.fixture(scope="module")
def clients(shared_server: LiveServer) -> Iterator[dict[str, httpx.Client]]:
    made = {
        name: http_clients.bearer(shared_server, f"scoped-{name}", scopes)
        for name, scopes in TOKENS.items()
    }
    yield made
    for client in made.values():
        client.close()


def _last_event_id(client: httpx.Client) -> int:
    return int(client.get("/readyz").json()["last_event_id"] or 0)


def _answer(client: httpx.Client, method: str, path: str, headers: dict[str, str]):
    with client.stream(method, path, headers=headers) as response:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
    return response


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [(method, path, scope) for (method, path), scope in sorted(documented_scopes().items())],
)
def test_a_route_refuses_a_token_without_its_scope_and_admits_one_with_it(
    shared_server, clients, method, path, scope
):
    before = _last_event_id(clients["none"])
    for target, headers in _requests(method, path):
        for name, client in clients.items():
            response = _answer(client, method, target, headers)
            holds = name == "admin" or scope in TOKENS[name].split()
            if holds:
                assert response.status_code not in (401, 403), (name, target, response.text)
            else:
                assert response.status_code == 403, (name, target, response.text)
                assert response.json() == {
                    "error": {
                        "code": "forbidden",
                        "message": f"The token lacks the '{scope}' scope.",
                        "details": {},
                    }
                }
    assert _last_event_id(clients["none"]) == before


def test_a_worker_token_sees_no_ones_jobs_but_through_its_claim(shared_server):
    """`worker` alone: every user route is a 403, also on another owner's job and its stream;
    with `jobs:read jobs:write` too, its `sub` owns jobs like anyone's, and others' stay 404."""
    with (
        http_clients.bearer(shared_server, "scoped-owner") as owner,
        http_clients.bearer(shared_server, "scoped-w", "worker") as worker,
        http_clients.bearer(shared_server, "scoped-wrw", "worker jobs:read jobs:write") as reader,
    ):
        job = create(owner, type="scoped.t")
        path = f"/api/v1/jobs/{job['id']}"
        for method, target, headers in [
            ("GET", path, {}),
            ("GET", f"{path}/events", {}),
            ("GET", f"{path}/events", SSE),
            ("GET", "/api/v1/jobs", {}),
            ("GET", "/api/v1/events", SSE),
            ("POST", "/api/v1/jobs", {}),
        ]:
            assert _answer(worker, method, target, headers).status_code == 403, target
        assert reader.get(path).status_code == 404
        assert reader.get("/api/v1/jobs", params={"type": "scoped.t"}).json()["total"] == 0
        events = reader.get("/api/v1/events", params={"job_id": job["id"]}).json()
        assert events["items"] == []
        # What it may read: the job it claims, whoever owns it.
        claimed = worker.post(
            "/api/v1/workers/claim", json={"types": ["scoped.t"], "worker_id": "w"}
        )
        assert claimed.status_code == 200, claimed.text
        assert claimed.json()["job"]["id"] == job["id"]
        assert claimed.json()["job"]["owner"] == "scoped-owner"


def test_a_user_token_cannot_act_as_a_worker_on_its_own_job(shared_server):
    with (
        http_clients.bearer(shared_server, "scoped-user") as user,
        http_clients.bearer(shared_server, "scoped-w2", "worker") as worker,
    ):
        job = create(user, type="scoped.own")
        claimed = worker.post(
            "/api/v1/workers/claim", json={"types": ["scoped.own"], "worker_id": "w"}
        ).json()
        lease = {"Job-Lease": claimed["lease"]["token"]}
        before = user.get(f"/api/v1/jobs/{job['id']}").json()
        for action in ("heartbeat", "progress", "logs", "succeed", "fail", "cancelled"):
            body = {"message": "x"} if action == "logs" else {}
            answer = user.post(f"/api/v1/jobs/{job['id']}/{action}", json=body, headers=lease)
            assert answer.status_code == 403, (action, answer.text)
        refused = user.post("/api/v1/workers/claim", json={"types": ["scoped.own"]})
        assert refused.status_code == 403
        assert user.get(f"/api/v1/jobs/{job['id']}").json() == before
