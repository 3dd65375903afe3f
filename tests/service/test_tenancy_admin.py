"""`admin` sees and acts on every owner's jobs, and reads a deleted job's events, which its
owner no longer can (API.md, "Auth")."""

from __future__ import annotations

import functools
import uuid

from tests import support, worker_steps
from tests.service.tenancy import NOT_FOUND

_create = functools.partial(support.create, type="video.render")


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


def test_admin_cannot_read_events_of_a_job_that_never_existed(server, admin):
    response = admin.get(f"/api/v1/jobs/{uuid.uuid4()}/events")
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
