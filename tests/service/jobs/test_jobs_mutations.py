from __future__ import annotations

import re

import pytest

from tests import worker_steps
from tests.support import create

pytestmark = pytest.mark.backends("sqlite", "postgres")
# On SQLite only: the store path of the tests that run on both; the rest is Python.
SQLITE_ONLY = pytest.mark.backends("sqlite")

TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


@pytest.fixture
def owner(shared_server):
    with shared_server.client("alice") as client:
        yield client


@pytest.fixture
def auditor(shared_server):
    with shared_server.client("root", "admin") as client:
        yield client


def fetch(client, job_id):
    return client.get(f"/api/v1/jobs/{job_id}").json()


def events_of(client, job_id):
    return client.get(f"/api/v1/jobs/{job_id}/events").json()["items"]


def event_count(admin):
    return len(admin.get("/api/v1/events", params={"limit": 1000}).json()["items"])


def running_job(server, client, **fields):
    job = create(client, **fields)
    worker_steps.start(server, job["id"])
    return fetch(client, job["id"])


def finished_job(server, client, status):
    job = create(client)
    if status == "cancelled":
        client.post(f"/api/v1/jobs/{job['id']}/cancel")
        return fetch(client, job["id"])
    worker_steps.start(server, job["id"])
    if status == "succeeded":
        worker_steps.succeed(server, job["id"], result={"ok": True}, result_type="r")
    else:
        worker_steps.fail(server, job["id"])
    return fetch(client, job["id"])


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


# PATCH


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"name": "Outro"}, id="name"),
        pytest.param({"starred": True}, id="starred"),
        pytest.param({"metadata": {"project_id": "p-7", "n": [1]}}, id="metadata"),
        pytest.param({"name": "Outro", "starred": True, "metadata": {"k": "v"}}, id="all"),
    ],
)
def test_patch_updates_the_job_and_records_an_updated_event(alice, changes):
    job = create(alice, name="Intro")

    response = alice.patch(f"/api/v1/jobs/{job['id']}", json=changes)

    assert response.status_code == 200
    patched = response.json()
    assert {key: patched[key] for key in changes} == changes
    assert patched["version"] == job["version"] + 1
    assert patched == fetch(alice, job["id"])
    event = events_of(alice, job["id"])[-1]
    assert (event["type"], event["seq"], event["data"]) == ("updated", 2, changes)
    assert patched["last_event_id"] == event["id"]
    assert patched["updated_at"] == event["timestamp"]
    moved = {*changes, "version", "updated_at", "last_event_id"}
    assert {k: v for k, v in patched.items() if k not in moved} == {
        k: v for k, v in job.items() if k not in moved
    }


@SQLITE_ONLY
def test_patch_name_null_clears_the_name(alice):
    job = create(alice, name="Intro")

    patched = alice.patch(f"/api/v1/jobs/{job['id']}", json={"name": None}).json()

    assert patched["name"] is None


def test_patch_starred_moves_the_job_between_starred_lists(alice):
    job = create(alice)
    alice.patch(f"/api/v1/jobs/{job['id']}", json={"starred": True})

    starred = alice.get("/api/v1/jobs", params={"starred": "true"}).json()

    assert [item["id"] for item in starred["items"]] == [job["id"]]
    alice.patch(f"/api/v1/jobs/{job['id']}", json={"starred": False})
    assert alice.get("/api/v1/jobs", params={"starred": "true"}).json()["total"] == 0


@pytest.mark.parametrize(
    "status", ["succeeded", pytest.param("failed", marks=SQLITE_ONLY), "cancelled"]
)
def test_patch_of_a_finished_job_works(server, alice, status):
    job = finished_job(server, alice, status)

    response = alice.patch(f"/api/v1/jobs/{job['id']}", json={"starred": True, "name": "kept"})

    assert response.status_code == 200
    patched = response.json()
    assert (patched["status"], patched["starred"], patched["name"]) == (status, True, "kept")
    assert patched["finished_at"] == job["finished_at"]


@SQLITE_ONLY
def test_patch_of_a_running_job_leaves_it_running(server, alice):
    job = running_job(server, alice)

    patched = alice.patch(f"/api/v1/jobs/{job['id']}", json={"name": "busy"}).json()

    assert (patched["status"], patched["attempt"], patched["name"]) == ("running", 1, "busy")


@pytest.mark.backends("sqlite")  # rejected before the store is read
@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({}, "body", id="empty"),
        pytest.param({"bogus": 1}, "bogus", id="unknown-only"),
        pytest.param({"name": "x", "status": "succeeded"}, "status", id="unknown-with-known"),
        pytest.param({"name": 5}, "name", id="name-number"),
        pytest.param({"name": ""}, "name", id="name-empty"),
        pytest.param({"name": "n" * 201}, "name", id="name-too-long"),
        pytest.param({"starred": "yes"}, "starred", id="starred-string"),
        pytest.param({"starred": 1}, "starred", id="starred-number"),
        pytest.param({"starred": None}, "starred", id="starred-null"),
        pytest.param({"metadata": [1]}, "metadata", id="metadata-list"),
        pytest.param({"metadata": None}, "metadata", id="metadata-null"),
        pytest.param({"metadata": {"blob": "x" * 262144}}, "metadata", id="metadata-too-large"),
        pytest.param([{"name": "x"}], "body", id="body-list"),
    ],
)
def test_invalid_patch_is_rejected_and_changes_nothing(owner, auditor, body, field):
    job = create(owner, name="Intro")
    before = event_count(auditor)

    response = owner.patch(f"/api/v1/jobs/{job['id']}", json=body)

    assert_error(response, 400, "invalid_request")
    assert field in response.json()["error"]["details"]
    assert fetch(owner, job["id"]) == job
    assert event_count(auditor) == before


def test_patch_of_another_owners_job_is_not_found(server, alice, bob):
    job = create(alice)

    assert_error(bob.patch(f"/api/v1/jobs/{job['id']}", json={"name": "x"}), 404, "not_found")
    assert fetch(alice, job["id"]) == job


@SQLITE_ONLY
def test_admin_may_patch_any_owners_job(server, alice, admin):
    job = create(alice)

    patched = admin.patch(f"/api/v1/jobs/{job['id']}", json={"starred": True}).json()

    assert (patched["starred"], patched["owner"]) == (True, "alice")


# Cancel


def test_cancel_of_a_pending_job_cancels_it_at_once(alice):
    job = create(alice)

    response = alice.post(f"/api/v1/jobs/{job['id']}/cancel")

    assert response.status_code == 200
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert TIMESTAMP.fullmatch(cancelled["finished_at"])
    assert cancelled["version"] == 2
    assert cancelled == fetch(alice, job["id"])
    event = events_of(alice, job["id"])[-1]
    assert event["type"] == "cancelled"
    assert cancelled["finished_at"] == event["timestamp"]


def test_cancel_of_a_running_job_requests_the_worker_to_stop(server, alice):
    job = running_job(server, alice)

    response = alice.post(f"/api/v1/jobs/{job['id']}/cancel")

    assert response.status_code == 200
    requested = response.json()
    assert (requested["status"], requested["cancel_requested"]) == ("running", True)
    assert requested["finished_at"] is None
    assert requested["version"] == job["version"] + 1
    assert events_of(alice, job["id"])[-1]["type"] == "cancel_requested"


def test_acknowledged_cancel_ends_the_job_cancelled(server, alice):
    job = running_job(server, alice)
    alice.post(f"/api/v1/jobs/{job['id']}/cancel")

    worker_steps.acknowledge_cancel(server, job["id"])

    assert fetch(alice, job["id"])["status"] == "cancelled"


@SQLITE_ONLY
def test_repeated_cancel_of_a_running_job_is_harmless(server, alice, admin):
    job = running_job(server, alice)
    first = alice.post(f"/api/v1/jobs/{job['id']}/cancel").json()
    before = event_count(admin)

    again = alice.post(f"/api/v1/jobs/{job['id']}/cancel")

    assert again.status_code == 200
    assert again.json() == first
    assert event_count(admin) == before


@SQLITE_ONLY
def test_repeated_cancel_of_a_cancelled_job_is_harmless(alice, admin):
    job = create(alice)
    first = alice.post(f"/api/v1/jobs/{job['id']}/cancel").json()
    before = event_count(admin)

    again = alice.post(f"/api/v1/jobs/{job['id']}/cancel")

    assert again.status_code == 200
    assert again.json() == first
    assert event_count(admin) == before


@pytest.mark.parametrize("status", ["succeeded", pytest.param("failed", marks=SQLITE_ONLY)])
def test_cancel_of_a_terminal_job_conflicts(server, alice, admin, status):
    job = finished_job(server, alice, status)
    before = event_count(admin)

    response = alice.post(f"/api/v1/jobs/{job['id']}/cancel")

    assert_error(response, 409, "conflict")
    assert fetch(alice, job["id"]) == job
    assert event_count(admin) == before


@SQLITE_ONLY
def test_cancel_reason_is_recorded_for_a_pending_job(alice):
    job = create(alice)

    alice.post(f"/api/v1/jobs/{job['id']}/cancel", json={"reason": "not needed"})

    event = events_of(alice, job["id"])[-1]
    assert (event["type"], event["data"]["reason"]) == ("cancelled", "not needed")


@SQLITE_ONLY
def test_cancel_reason_is_recorded_for_a_running_job(server, alice):
    job = running_job(server, alice)

    alice.post(f"/api/v1/jobs/{job['id']}/cancel", json={"reason": "x"})

    event = events_of(alice, job["id"])[-1]
    assert (event["type"], event["data"]["reason"]) == ("cancel_requested", "x")


@SQLITE_ONLY
def test_cancel_with_an_empty_object_body_works(alice):
    job = create(alice)

    response = alice.post(f"/api/v1/jobs/{job['id']}/cancel", json={})

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


@pytest.mark.backends("sqlite")  # rejected before the store is read
@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"reason": 5}, "reason", id="reason-number"),
        pytest.param({"reason": ""}, "reason", id="reason-empty"),
        pytest.param({"reason": "r" * 1001}, "reason", id="reason-too-long"),
        pytest.param({"why": "x"}, "why", id="unknown-field"),
        pytest.param(["x"], "body", id="body-list"),
    ],
)
def test_invalid_cancel_body_is_rejected_and_changes_nothing(owner, auditor, body, field):
    job = create(owner)
    before = event_count(auditor)

    response = owner.post(f"/api/v1/jobs/{job['id']}/cancel", json=body)

    assert_error(response, 400, "invalid_request")
    assert field in response.json()["error"]["details"]
    assert fetch(owner, job["id"]) == job
    assert event_count(auditor) == before


def test_cancel_of_another_owners_job_is_not_found(server, alice, bob):
    job = create(alice)

    assert_error(bob.post(f"/api/v1/jobs/{job['id']}/cancel"), 404, "not_found")
    assert fetch(alice, job["id"])["status"] == "pending"


def test_cancel_of_an_unknown_job_is_not_found(alice):
    response = alice.post("/api/v1/jobs/00000000-0000-4000-8000-000000000000/cancel")

    assert_error(response, 404, "not_found")


# POST /api/v1/cancel


def test_cancel_newest_takes_running_jobs_newest_first_then_pending_ones(server, alice, bob):
    oldest_pending, newer_pending = create(alice)["id"], create(alice)["id"]
    older_running, newest_running = create(alice)["id"], create(alice)["id"]
    newest_pending = create(alice)["id"]
    for job_id in (older_running, newest_running):
        worker_steps.start(server, job_id)
    bobs = create(bob)["id"]

    picked = []
    for _ in range(5):
        response = alice.post("/api/v1/cancel")
        assert response.status_code == 200, response.text
        job = response.json()["job"]
        picked.append(job["id"])
        if job["status"] == "running":
            assert job["cancel_requested"] is True
            worker_steps.acknowledge_cancel(server, job["id"])
        else:
            assert job["status"] == "cancelled"

    assert picked == [newest_running, older_running, newest_pending, newer_pending, oldest_pending]
    assert all(fetch(alice, job_id)["status"] == "cancelled" for job_id in picked)
    assert fetch(bob, bobs)["status"] == "pending"


def test_cancel_newest_answers_the_job_as_the_job_routes_do(alice):
    job = create(alice)

    body = alice.post("/api/v1/cancel").json()

    assert set(body) == {"job"}
    assert body["job"] == fetch(alice, job["id"])


def test_cancel_newest_without_an_active_job_is_not_found(server, alice, bob):
    finished = create(alice)["id"]
    alice.post(f"/api/v1/jobs/{finished}/cancel")
    create(bob)

    response = alice.post("/api/v1/cancel")

    assert_error(response, 404, "not_found")
    assert response.json()["error"]["message"] == "No active job found."


# Replay


def test_replay_creates_a_new_pending_job_from_the_original(server, alice):
    original = create(
        alice,
        type="video.render",
        payload={"script": "s"},
        name="Intro",
        category="export",
        priority="high",
        metadata={"project_id": "p-42"},
        max_attempts=3,
    )
    worker_steps.start(server, original["id"])
    worker_steps.fail(server, original["id"])

    response = alice.post(f"/api/v1/jobs/{original['id']}/replay")

    assert response.status_code == 201
    replay = response.json()
    assert response.headers["location"] == f"/api/v1/jobs/{replay['id']}"
    assert replay["id"] != original["id"]
    assert replay["replayed_from"] == original["id"]
    copied = ("type", "payload", "name", "category", "priority", "metadata", "max_attempts")
    assert {k: replay[k] for k in copied} == {k: original[k] for k in copied}
    assert (replay["status"], replay["attempt"], replay["version"]) == ("pending", 0, 1)
    assert (replay["error"], replay["finished_at"], replay["owner"]) == (None, None, "alice")
    assert replay == fetch(alice, replay["id"])
    assert fetch(alice, original["id"])["status"] == "failed"


def test_replay_of_another_owners_job_is_not_found(server, alice, bob):
    job = create(alice)

    assert_error(bob.post(f"/api/v1/jobs/{job['id']}/replay"), 404, "not_found")
    assert bob.get("/api/v1/jobs").json()["total"] == 0


def test_replay_by_admin_belongs_to_the_original_owner(server, alice, admin):
    job = create(alice)

    replay = admin.post(f"/api/v1/jobs/{job['id']}/replay").json()

    assert replay["owner"] == "alice"
    assert alice.get(f"/api/v1/jobs/{replay['id']}").status_code == 200


# Delete


def test_delete_removes_the_job_from_every_read(alice):
    job = create(alice)
    kept = create(alice)

    response = alice.delete(f"/api/v1/jobs/{job['id']}")

    assert response.status_code == 204
    assert response.content == b""
    assert_error(alice.get(f"/api/v1/jobs/{job['id']}"), 404, "not_found")
    page = alice.get("/api/v1/jobs").json()
    assert ([item["id"] for item in page["items"]], page["total"]) == ([kept["id"]], 1)
    assert alice.get("/api/v1/jobs", params={"status": "pending"}).json()["total"] == 1
    assert_error(alice.get(f"/api/v1/jobs/{job['id']}/events"), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("PATCH", "", {"name": "x"}, id="patch"),
        pytest.param("POST", "/cancel", None, id="cancel"),
        pytest.param("POST", "/replay", None, id="replay"),
        pytest.param("DELETE", "", None, id="delete"),
    ],
)
def test_deleted_job_is_not_found_for_every_change(owner, auditor, method, path, body):
    job = create(owner)
    owner.delete(f"/api/v1/jobs/{job['id']}")
    before = event_count(auditor)
    total = owner.get("/api/v1/jobs").json()["total"]

    response = owner.request(method, f"/api/v1/jobs/{job['id']}{path}", json=body)

    assert_error(response, 404, "not_found")
    assert event_count(auditor) == before
    assert owner.get("/api/v1/jobs").json()["total"] == total


def test_delete_of_a_running_job_cancels_it_first(server, alice, admin):
    job = running_job(server, alice)

    assert alice.delete(f"/api/v1/jobs/{job['id']}").status_code == 204

    events = admin.get(f"/api/v1/jobs/{job['id']}/events").json()
    assert [e["type"] for e in events["items"]] == ["created", "started", "cancelled", "deleted"]
    assert events["job_status"] == "cancelled"
    assert_error(admin.get(f"/api/v1/jobs/{job['id']}"), 404, "not_found")
    assert alice.get("/api/v1/jobs", params={"status": "running"}).json()["total"] == 0


def test_delete_of_a_pending_job_records_only_deleted(alice, admin):
    job = create(alice)

    alice.delete(f"/api/v1/jobs/{job['id']}")

    events = admin.get(f"/api/v1/jobs/{job['id']}/events").json()["items"]
    assert [e["type"] for e in events] == ["created", "deleted"]


def test_delete_of_another_owners_job_is_not_found(server, alice, bob):
    job = create(alice)

    assert_error(bob.delete(f"/api/v1/jobs/{job['id']}"), 404, "not_found")
    assert fetch(alice, job["id"]) == job


def test_admin_may_delete_any_owners_job(server, alice, admin):
    job = create(alice)

    assert admin.delete(f"/api/v1/jobs/{job['id']}").status_code == 204
    assert_error(alice.get(f"/api/v1/jobs/{job['id']}"), 404, "not_found")
