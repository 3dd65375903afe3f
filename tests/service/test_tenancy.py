"""A tenant never sees or touches another tenant's job: every route answers as if it did not
exist. `admin` sees and acts on every job (API.md, "Auth")."""

from __future__ import annotations

import functools
import uuid

import pytest

from tests import support, worker_steps

pytestmark = pytest.mark.backends("sqlite", "postgres")

NOT_FOUND = {"error": {"code": "not_found", "message": "Job not found.", "details": {}}}


_create = functools.partial(support.create, type="video.render")


ROUTES = [
    pytest.param("GET", "", None, None, id="get"),
    pytest.param("GET", "", {"as_of": "1"}, None, id="get-as-of"),
    pytest.param("GET", "", {"include": "logs"}, None, id="get-logs"),
    pytest.param("PATCH", "", None, {"name": "stolen", "starred": True}, id="patch"),
    pytest.param("POST", "/cancel", None, None, id="cancel"),
    pytest.param("POST", "/cancel", None, {"reason": "mine now"}, id="cancel-reason"),
    pytest.param("POST", "/replay", None, None, id="replay"),
    pytest.param("DELETE", "", None, None, id="delete"),
    pytest.param("GET", "/events", None, None, id="events"),
    pytest.param("GET", "/events", {"after": "0", "limit": "5"}, None, id="events-page"),
]


def _foreign_requests(job_id: str):
    """Every job route, as (method, path, params, json)."""
    return [
        (method, f"/api/v1/jobs/{job_id}{suffix}", params, body)
        for method, suffix, params, body in (route.values for route in ROUTES)
    ]


def _send(client, request):
    method, path, params, body = request
    return client.request(method, path, params=params, json=body)


@pytest.mark.backends("sqlite")  # per-job checks in Python, the same on both backends
@pytest.mark.parametrize(("method", "suffix", "params", "body"), ROUTES)
def test_foreign_job_answers_exactly_like_an_unknown_one(
    server, alice, bob, method, suffix, params, body
):
    job = _create(bob, name="bob's secret", category="private")
    foreign = _send(alice, (method, f"/api/v1/jobs/{job['id']}{suffix}", params, body))
    unknown = _send(alice, (method, f"/api/v1/jobs/{uuid.uuid4()}{suffix}", params, body))
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json() == unknown.json() == NOT_FOUND
    assert foreign.headers["content-type"] == unknown.headers["content-type"]
    assert "bob" not in foreign.text


@pytest.mark.backends("sqlite")  # per-job checks in Python, the same on both backends
def test_foreign_running_job_is_untouched_by_every_route(server, alice, bob):
    job = _create(bob)
    worker_steps.start(server, job["id"])
    worker_steps.log(server, job["id"], "bob's log line")
    before = bob.get(f"/api/v1/jobs/{job['id']}").json()
    for request in _foreign_requests(job["id"]):
        response = _send(alice, request)
        assert response.status_code == 404, request
        assert response.json() == NOT_FOUND
        assert "bob" not in response.text
    after = bob.get(f"/api/v1/jobs/{job['id']}").json()
    assert after == before
    assert after["status"] == "running"
    assert after["cancel_requested"] is False
    assert bob.get("/api/v1/jobs").json()["total"] == 1


@pytest.mark.backends("sqlite")  # per-job checks in Python, the same on both backends
def test_deleted_own_job_answers_not_found_everywhere_for_its_owner(server, alice):
    job = _create(alice)
    assert alice.delete(f"/api/v1/jobs/{job['id']}").status_code == 204
    for request in _foreign_requests(job["id"]):
        response = _send(alice, request)
        assert response.status_code == 404, request
        assert response.json() == NOT_FOUND


def test_list_never_counts_another_owners_jobs(server, alice, bob):
    mine = [_create(alice, category="export", priority="high") for _ in range(3)]
    for _ in range(5):
        _create(bob, category="export", priority="high")
    alice.post(f"/api/v1/jobs/{mine[0]['id']}/cancel")
    page = alice.get("/api/v1/jobs").json()
    assert page["total"] == 3
    assert {item["id"] for item in page["items"]} == {job["id"] for job in mine}
    assert {item["owner"] for item in page["items"]} == {"alice"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"type": "video.render"}, 3, id="type", marks=pytest.mark.backends("sqlite")),
        pytest.param(
            {"category": "export"}, 3, id="category", marks=pytest.mark.backends("sqlite")
        ),
        pytest.param({"priority": "high"}, 3, id="priority", marks=pytest.mark.backends("sqlite")),
        pytest.param({"status": "pending,cancelled"}, 3, id="status"),
        pytest.param(
            {"status": "pending"}, 2, id="status-pending", marks=pytest.mark.backends("sqlite")
        ),
        pytest.param({"finished": "false"}, 2, id="finished", marks=pytest.mark.backends("sqlite")),
        pytest.param({"starred": "false"}, 3, id="starred", marks=pytest.mark.backends("sqlite")),
        pytest.param(
            {"created_from": "946684800000"},
            3,
            id="created_from",
            marks=pytest.mark.backends("sqlite"),
        ),
        pytest.param({"sort": "priority", "order": "asc"}, 3, id="sort"),
        pytest.param({"owner": "bob"}, 0, id="owner-bob"),
        pytest.param({"owner": "alice,bob"}, 3, id="owner-both"),
    ],
)
def test_list_filters_never_reveal_another_owners_jobs(server, alice, bob, params, expected):
    mine = [_create(alice, category="export", priority="high") for _ in range(3)]
    for _ in range(4):
        _create(bob, category="export", priority="high")
    alice.post(f"/api/v1/jobs/{mine[0]['id']}/cancel")
    response = alice.get("/api/v1/jobs", params=params)
    if response.status_code == 400:  # refusing a foreign owner filter is also acceptable
        assert "owner" in params
        assert "bob" not in response.text
        return
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == expected == len(page["items"])
    assert all(item["owner"] == "alice" for item in page["items"])


def test_cursor_pages_never_reveal_another_owners_jobs(server, alice, bob):
    for _ in range(5):
        _create(alice)
        _create(bob)
    seen = []
    params = {"limit": 2}
    while True:
        page = alice.get("/api/v1/jobs", params=params).json()
        seen += page["items"]
        if page["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": page["next_cursor"]}
    assert len(seen) == 5
    assert {item["owner"] for item in seen} == {"alice"}


def test_global_events_never_show_another_owners_events(server, alice, bob):
    mine = _create(alice)
    theirs = _create(bob)
    worker_steps.start(server, theirs["id"])
    worker_steps.log(server, theirs["id"], "bob only")
    alice.patch(f"/api/v1/jobs/{mine['id']}", json={"starred": True})
    items = alice.get("/api/v1/events").json()["items"]
    assert [item["job_id"] for item in items] == [mine["id"], mine["id"]]
    filtered = alice.get("/api/v1/events", params={"job_id": theirs["id"]})
    assert filtered.status_code == 200
    assert filtered.json()["items"] == []
    assert filtered.json()["has_more"] is False
    by_type = alice.get("/api/v1/events", params={"type": "log,started"}).json()
    assert by_type["items"] == []
    assert "bob" not in alice.get("/api/v1/events").text


def test_cancel_newest_never_cancels_another_owners_job(server, alice, bob):
    theirs = _create(bob)
    response = alice.post("/api/v1/cancel")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["message"] == "No active job found."
    assert "bob" not in response.text
    mine = _create(alice)
    newer = _create(bob)
    cancelled = alice.post("/api/v1/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["job"]["id"] == mine["id"]
    for job in (theirs, newer):
        assert bob.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "pending"


def test_idempotency_keys_are_namespaced_per_owner(server, alice, bob):
    key = {"Idempotency-Key": "shared-key-1"}
    first = alice.post("/api/v1/jobs", json={"type": "a.job"}, headers=key)
    assert first.status_code == 201
    # The same key from another owner, with another body: a new job, not a 409.
    other = bob.post("/api/v1/jobs", json={"type": "b.job"}, headers=key)
    assert other.status_code == 201, other.text
    assert other.json()["owner"] == "bob"
    assert other.json()["id"] != first.json()["id"]
    # The same key and the same body from another owner: still that owner's own job.
    same_body = bob.post("/api/v1/jobs", json={"type": "a.job"}, headers={"Idempotency-Key": "k2"})
    alice_k2 = alice.post("/api/v1/jobs", json={"type": "a.job"}, headers={"Idempotency-Key": "k2"})
    assert same_body.status_code == alice_k2.status_code == 201
    assert same_body.json()["id"] != alice_k2.json()["id"]
    # Each owner replays its own.
    replayed = bob.post("/api/v1/jobs", json={"type": "b.job"}, headers=key)
    assert replayed.status_code == 200
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json()["id"] == other.json()["id"]
    conflict = alice.post("/api/v1/jobs", json={"type": "b.job"}, headers=key)
    assert conflict.status_code == 409
    assert "bob" not in conflict.text
    assert alice.get("/api/v1/jobs").json()["total"] == 2
    assert bob.get("/api/v1/jobs").json()["total"] == 2


def test_admin_sees_every_owners_jobs_and_filters_by_owner(server, alice, bob, admin):
    mine = _create(alice)
    theirs = [_create(bob), _create(bob)]
    everything = admin.get("/api/v1/jobs").json()
    assert everything["total"] == 3
    assert {item["owner"] for item in everything["items"]} == {"alice", "bob"}
    only_bob = admin.get("/api/v1/jobs", params={"owner": "bob"}).json()
    assert only_bob["total"] == 2
    assert {item["id"] for item in only_bob["items"]} == {job["id"] for job in theirs}
    assert admin.get(f"/api/v1/jobs/{mine['id']}").json()["owner"] == "alice"
    events = admin.get("/api/v1/events").json()["items"]
    assert {event["job_id"] for event in events} == {mine["id"], *(j["id"] for j in theirs)}


@pytest.mark.backends("sqlite")  # per-job checks in Python, the same on both backends
def test_admin_acts_on_another_owners_jobs(server, bob, admin):
    job = _create(bob, name="original")
    patched = admin.patch(f"/api/v1/jobs/{job['id']}", json={"name": "renamed"})
    assert patched.status_code == 200
    assert patched.json()["name"] == "renamed"
    assert patched.json()["owner"] == "bob"
    replay = admin.post(f"/api/v1/jobs/{job['id']}/replay")
    assert replay.status_code == 201
    assert replay.json()["owner"] == "bob"
    assert replay.json()["replayed_from"] == job["id"]
    cancelled = admin.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    as_of = admin.get(f"/api/v1/jobs/{job['id']}", params={"as_of": 1})
    assert as_of.status_code == 200
    assert as_of.json()["name"] == "original"
    assert admin.delete(f"/api/v1/jobs/{replay.json()['id']}").status_code == 204
    assert bob.get(f"/api/v1/jobs/{replay.json()['id']}").status_code == 404
    assert bob.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "cancelled"


@pytest.mark.backends("sqlite")  # per-job checks in Python, the same on both backends
def test_admin_reads_a_deleted_jobs_events_but_its_owner_cannot(server, bob, admin):
    job = _create(bob)
    worker_steps.start(server, job["id"])
    assert bob.delete(f"/api/v1/jobs/{job['id']}").status_code == 204
    owner_view = bob.get(f"/api/v1/jobs/{job['id']}/events")
    assert owner_view.status_code == 404
    assert owner_view.json() == NOT_FOUND
    page = admin.get(f"/api/v1/jobs/{job['id']}/events")
    assert page.status_code == 200
    body = page.json()
    assert [event["type"] for event in body["items"]] == [
        "created",
        "started",
        "cancelled",
        "deleted",
    ]
    assert body["job_status"] == "cancelled"
    assert body["finished"] is True
    assert admin.get(f"/api/v1/jobs/{job['id']}").status_code == 404


@pytest.mark.backends("sqlite")  # per-job checks in Python, the same on both backends
def test_admin_cannot_read_events_of_a_job_that_never_existed(server, admin):
    response = admin.get(f"/api/v1/jobs/{uuid.uuid4()}/events")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


@pytest.mark.backends("sqlite")  # refused before the store is read
def test_malformed_job_id_answers_like_an_unknown_one(server, alice):
    response = alice.get("/api/v1/jobs/not-a-uuid")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
