"""A tenant never sees or touches another tenant's job: every route answers as if it did not
exist. `admin` sees and acts on every job (API.md, "Auth").

`ROUTES` holds a probe for every route of the router (a route added without one fails
`test_every_route_has_a_tenancy_probe`): alice and her browser (the cookie) and her
EventSource (`?access_token=`) try every form of every job route on bob's running job and on
his deleted one, each answer compared with the answer for a job that never existed.
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from service.edge import routing
from tests import sse_reader, support
from tests.service.tenancy import NOT_FOUND, SSE, World, same_as_unknown, world_of

# Scoping is in the read models' SQL: both backends.
pytestmark = pytest.mark.backends("sqlite", "postgres")

_create = functools.partial(support.create, type="video.render")

JOB = "/api/v1/jobs/{job_id}"

# Every form of each job route: (params, body, headers). GET routes are tried as HEAD too.
JOB_FORMS: dict[tuple[str, str], list[tuple[dict | None, dict | None, dict | None]]] = {
    ("GET", JOB): [
        (None, None, None),
        ({"as_of": "1"}, None, None),
        ({"as_of": "99"}, None, None),  # past its version: a 400 would say it exists
        ({"as_of": "2", "include": "logs"}, None, None),
        ({"include": "logs"}, None, None),
        ({"as_of": "0"}, None, None),  # a 400 for any id
    ],
    ("PATCH", JOB): [
        (None, {"name": "stolen", "starred": True}, None),
        (None, {"metadata": {"mine": True}}, None),
        (None, {"name": ""}, None),
    ],
    ("DELETE", JOB): [(None, None, None)],
    ("POST", f"{JOB}/cancel"): [(None, None, None), (None, {"reason": "mine now"}, None)],
    ("POST", f"{JOB}/replay"): [(None, None, None)],
    ("GET", f"{JOB}/events"): [
        (None, None, None),
        ({"after": "0", "limit": "5"}, None, None),
        (None, None, SSE),
        ({"stream": "true"}, None, None),
        (None, None, {**SSE, "Last-Event-ID": "1"}),
    ],
}
WORKER_ACTIONS = {
    "heartbeat": None,
    "progress": {"percent": 50},
    "logs": {"message": "mine"},
    "succeed": {"result": 1},
    "fail": {"error": {"message": "no"}},
    "cancelled": None,
}


@pytest.fixture
def world(shared_server) -> Iterator[World]:
    """Owners of their own on the module's server: ~30 probes, one server start."""
    with world_of(shared_server) as made:
        yield made


def _bobs_jobs(world: World) -> tuple[dict, dict]:
    """Bob's running job (with a log line) and his deleted one."""
    running = world.running(world.bob, name="bob's secret", category="private")["job"]
    deleted = _create(world.bob, name="bob's deleted")
    assert world.bob.delete(f"/api/v1/jobs/{deleted['id']}").status_code == 204
    return running, deleted


def _probe_job_route(method: str, path: str) -> Callable[[World], None]:
    def probe(world: World) -> None:
        running, deleted = _bobs_jobs(world)
        before = world.admin.get(f"/api/v1/jobs/{running['id']}/events").json()
        callers = [world.alice, world.browser()]
        if path.endswith("/events"):
            callers.append(world.by_query())
        for caller in callers:
            for params, body, headers in JOB_FORMS[(method, path)]:
                streams = (params or {}).get("stream") == "true" or headers is not None
                if caller.params and not streams:
                    continue  # the query token is read on the SSE forms only
                for verb in (method, "HEAD") if method == "GET" else (method,):
                    for job in (running, deleted):
                        answer = same_as_unknown(
                            caller, verb, path, job["id"], params=params, body=body, headers=headers
                        )
                        # HEAD never streams, so never reads the query token: 401.
                        expected = (401,) if caller.params and verb == "HEAD" else (400, 404)
                        assert answer.status_code in expected, answer.text  # 400: for any id
                        if answer.status_code == 404 and verb != "HEAD":
                            assert answer.json() == NOT_FOUND
        # Nothing happened to bob's job; admin still sees it.
        assert world.admin.get(f"/api/v1/jobs/{running['id']}/events").json() == before
        assert world.bob.get(f"/api/v1/jobs/{running['id']}").json()["status"] == "running"
        assert world.bob.get("/api/v1/jobs").json()["total"] == 1

    return probe


def _probe_worker_route(action: str) -> Callable[[World], None]:
    """Worker routes are not limited by owner: the lease decides (API.md). A wrong lease on
    someone's job answers as on no job at all; a user's token is refused either way."""

    def probe(world: World) -> None:
        running, deleted = _bobs_jobs(world)
        path = f"{JOB}/{action}"
        wrong = {"Job-Lease": uuid.uuid4().hex}
        for caller, status in ((world.worker, 409), (world.admin, 409), (world.alice, 403)):
            for job in (running, deleted):
                answer = same_as_unknown(
                    caller, "POST", path, job["id"], body=WORKER_ACTIONS[action], headers=wrong
                )
                assert answer.status_code == status, answer.text
        assert world.bob.get(f"/api/v1/jobs/{running['id']}").json()["status"] == "running"

    return probe


def _probe_list(world: World) -> None:
    mine = [_create(world.alice, category="export", priority="high") for _ in range(3)]
    for _ in range(3):
        _create(world.bob, category="export", priority="high")
    world.running(world.bob, category="export", priority="high")
    parent = _create(world.bob, children=[{"type": "video.render"}, {"type": "video.render"}])
    assert world.alice.post(f"/api/v1/jobs/{mine[0]['id']}/cancel").status_code == 200
    tomorrow = str(int(time.time() * 1000) + 86_400_000)
    cases = [
        ({}, 3),
        ({"type": "video.render"}, 3),
        ({"category": "export"}, 3),
        ({"priority": "high"}, 3),
        ({"status": "pending,cancelled"}, 3),
        ({"finished": "false"}, 2),
        ({"finished": "true"}, 1),
        ({"starred": "false"}, 3),
        ({"created_from": "946684800000"}, 3),
        ({"created_to": tomorrow}, 3),
        ({"sort": "priority", "order": "asc"}, 3),
        ({"sort": "finished_at"}, 3),
        ({"owner": f"bob-{world.tag}"}, 0),
        ({"owner": f"alice-{world.tag},bob-{world.tag}"}, 3),
        ({"parent_id": parent["id"]}, 0),
        ({"result_type": "batch"}, 0),
    ]
    # The dashboard's totals: one limit=1 list per status.
    cases += [({"status": status, "limit": "1"}, n) for status, n in STATUS_TOTALS.items()]
    for caller in (world.alice, world.browser()):
        for params, expected in cases:
            page = caller.get("/api/v1/jobs", params=params).json()
            assert page["total"] == expected, (params, page)
            assert {item["owner"] for item in page["items"]} <= {world.alice_sub}, params
    # Paged by cursor: hers only; bob's cursor tells her no more than a forged one.
    seen, params = [], {"limit": "2"}
    while True:
        page = world.alice.get("/api/v1/jobs", params=params).json()
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params = {"limit": "2", "cursor": page["next_cursor"]}
    assert sorted(seen) == sorted(job["id"] for job in mine)
    bobs = world.bob.get("/api/v1/jobs", params={"limit": 1}).json()["next_cursor"]
    admins = world.admin.get("/api/v1/jobs", params={"limit": 1}).json()["next_cursor"]
    forged = world.alice.get("/api/v1/jobs", params={"cursor": "eyJub3QiOiJvdXJzIn0"})
    assert forged.status_code == 400
    for cursor in (bobs, admins):
        answer = world.alice.get("/api/v1/jobs", params={"cursor": cursor})
        assert answer.status_code == 400
        assert answer.json() == forged.json()


STATUS_TOTALS = {"pending": 2, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 1}


def _probe_create(world: World) -> None:
    """A job belongs to its creator; the same Idempotency-Key of two owners makes two jobs,
    each invisible to the other."""
    refused = world.alice.post("/api/v1/jobs", json={"type": "t", "owner": "bob"})
    assert refused.status_code == 400
    key = {"Idempotency-Key": "shared-key"}
    hers = world.alice.post("/api/v1/jobs", json={"type": "a.job"}, headers=key)
    his = world.bob.post("/api/v1/jobs", json={"type": "a.job"}, headers=key)
    assert hers.status_code == his.status_code == 201, (hers.text, his.text)
    assert (hers.json()["owner"], his.json()["owner"]) == (world.alice_sub, f"bob-{world.tag}")
    assert hers.json()["id"] != his.json()["id"]
    same_as_unknown(world.alice, "GET", JOB, his.json()["id"])
    same_as_unknown(world.bob, "GET", JOB, hers.json()["id"])
    # Each replays its own; another body under bob's key is a conflict of hers alone.
    replayed = world.bob.post("/api/v1/jobs", json={"type": "a.job"}, headers=key)
    assert (replayed.status_code, replayed.json()["id"]) == (200, his.json()["id"])
    other = world.bob.post("/api/v1/jobs", json={"type": "b.job"}, headers=key)
    assert other.status_code == 409
    assert world.alice_sub not in other.text
    batch = world.alice.post("/api/v1/jobs", json={"type": "t", "children": [{"type": "t"}]})
    child = world.alice.get("/api/v1/jobs", params={"parent_id": batch.json()["id"]}).json()
    assert [item["owner"] for item in child["items"]] == [world.alice_sub]
    assert world.alice.get("/api/v1/jobs").json()["total"] == 3
    assert world.bob.get("/api/v1/jobs").json()["total"] == 1


def _probe_events(world: World) -> None:
    mine = _create(world.alice)
    claimed = world.running(world.bob)
    theirs = claimed["job"]
    forms = [
        {},
        {"job_id": theirs["id"]},
        {"job_id": f"{theirs['id']},{mine['id']}"},
        {"type": "log,started"},
        {"type": "created"},
    ]
    for caller in (world.alice, world.browser()):
        for params in forms:
            page = caller.get("/api/v1/events", params=params).json()
            assert {item["job_id"] for item in page["items"]} <= {mine["id"]}, params
            assert "secret" not in str(page)
    admin = world.admin.get("/api/v1/events", params={"job_id": theirs["id"]}).json()
    assert [item["type"] for item in admin["items"]] == ["created", "started", "log"]
    # Streams: the backlog, then what happens live. Events arrive in commit order, so bob's
    # progress, committed before alice's star, would come first if it came at all.
    streams = [
        (world.alice, {"job_id": f"{theirs['id']},{mine['id']}"}),
        (world.alice, {"type": "created,progress,updated"}),
        (world.browser(), None),
        (world.by_query(), {"stream": "true"}),
    ]
    with contextlib.ExitStack() as stack:
        readers = []
        for caller, params in streams:
            response = stack.enter_context(
                caller.stream("GET", "/api/v1/events", params=params, headers=SSE)
            )
            assert response.status_code == 200, params
            readers.append(sse_reader.events(response))
        for events in readers:
            first = next(events)
            assert (first.event, first.json["job_id"]) == ("created", mine["id"])
        assert support.call(world.worker, claimed, "progress", {"percent": 10}).status_code == 200
        world.alice.patch(f"/api/v1/jobs/{mine['id']}", json={"starred": True})
        for events in readers:
            second = next(events)
            assert (second.event, second.json["job_id"]) == ("updated", mine["id"])


def _probe_cancel_newest(world: World) -> None:
    theirs = _create(world.bob)
    nothing = world.alice.post("/api/v1/cancel")
    assert nothing.status_code == 404
    assert nothing.json()["error"]["message"] == "No active job found."
    mine = _create(world.alice)
    newer = _create(world.bob)
    cancelled = world.alice.post("/api/v1/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["job"]["id"] == mine["id"]
    for job in (theirs, newer):
        assert world.bob.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "pending"
    # Own jobs only, also for admin.
    assert world.admin.post("/api/v1/cancel").status_code == 404


def _probe_claim(world: World) -> None:
    """`worker` claims jobs of every owner (API.md); a user's token claims nothing."""
    job_type = f"claim.{world.tag}"
    _create(world.bob, type=job_type)
    refused = world.alice.post("/api/v1/workers/claim", json={"types": [job_type]})
    assert refused.status_code == 403
    claimed = support.claim(world.worker, [job_type])
    assert claimed is not None
    assert claimed["job"]["owner"] == f"bob-{world.tag}"


def _probe_session(world: World) -> None:
    """A session is its caller's: the cookie it sets holds the caller's own token, and it reads
    as the caller, whoever else is signed in."""
    _create(world.bob)
    signed_in = world.alice.post("/api/v1/session")
    assert signed_in.status_code == 204
    token = world.alice.headers["authorization"].removeprefix("Bearer ")
    assert signed_in.headers["set-cookie"].startswith(f"jobtrail_token={token};")
    for caller in (world.alice, world.browser()):
        assert caller.get("/api/v1/session").json()["sub"] == world.alice_sub
    assert world.browser().delete("/api/v1/session").status_code == 204


def _probe_public(path: str) -> Callable[[World], None]:
    """Operations and the dashboard need no token, and so show no job."""

    def probe(world: World) -> None:
        job = world.running(world.bob, name="bob's secret")["job"]
        target = path.replace("{name}", "app.js")
        if "{job_id}" in target:
            answer = same_as_unknown(world.anonymous(), "GET", target, job["id"])
        else:
            answer = world.anonymous().get(target)
        assert answer.status_code == 200, answer.text
        assert job["id"] not in answer.text
        assert "bob" not in answer.text

    return probe


ROUTES: dict[tuple[str, str], Callable[[World], None]] = {
    **{route: _probe_job_route(*route) for route in JOB_FORMS},
    **{("POST", f"{JOB}/{action}"): _probe_worker_route(action) for action in WORKER_ACTIONS},
    ("GET", "/api/v1/jobs"): _probe_list,
    ("POST", "/api/v1/jobs"): _probe_create,
    ("GET", "/api/v1/events"): _probe_events,
    ("POST", "/api/v1/cancel"): _probe_cancel_newest,
    ("POST", "/api/v1/workers/claim"): _probe_claim,
    **{(method, "/api/v1/session"): _probe_session for method in ("POST", "GET", "DELETE")},
    **{
        ("GET", path): _probe_public(path)
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/", "/jobs/{job_id}")
    },
    ("GET", "/static/{name}"): _probe_public("/static/{name}"),
}


def test_every_route_has_a_tenancy_probe():
    routes = {
        (method, route.path)
        for route in routing.routes()
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert set(ROUTES) == routes


@pytest.mark.parametrize(("method", "path"), list(ROUTES))
def test_another_owners_job_is_out_of_reach_on_every_route(world, method, path):
    ROUTES[(method, path)](world)


# What the probes do not cover: one's own deleted job, batches (admin: test_tenancy_admin).


def test_deleted_own_job_answers_not_found_everywhere_for_its_owner(world):
    alice = world.alice
    job = _create(alice)
    assert alice.delete(f"/api/v1/jobs/{job['id']}").status_code == 204
    for (method, path), forms in JOB_FORMS.items():
        for params, body, headers in forms:
            same_as_unknown(
                alice, method, path, job["id"], params=params, body=body, headers=headers
            )


def test_batch_children_belong_to_the_parents_owner(world):
    alice, bob, admin = world.alice, world.bob, world.admin
    parent = _create(bob, children=[{"type": "child.a"}, {"type": "child.b"}])
    children = bob.get("/api/v1/jobs", params={"parent_id": parent["id"]}).json()["items"]
    assert {child["owner"] for child in children} == {f"bob-{world.tag}"}
    for child in children:
        assert same_as_unknown(alice, "GET", JOB, child["id"]).json() == NOT_FOUND
        same_as_unknown(alice, "POST", f"{JOB}/cancel", child["id"])
    assert alice.get("/api/v1/jobs", params={"parent_id": parent["id"]}).json()["total"] == 0
    assert alice.get("/api/v1/events", params={"job_id": children[0]["id"]}).json()["items"] == []
    assert admin.get("/api/v1/jobs", params={"parent_id": parent["id"]}).json()["total"] == 2
    assert bob.get(f"/api/v1/jobs/{parent['id']}").json()["children"]["pending"] == 2
