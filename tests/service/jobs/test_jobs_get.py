from __future__ import annotations

import pytest

from tests import worker_steps
from tests.support import create

pytestmark = pytest.mark.backends("sqlite", "postgres")

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def owner(shared_server):
    with shared_server.client("alice") as client:
        yield client


def events_of(client, job_id):
    return client.get(f"/api/v1/jobs/{job_id}/events").json()["items"]


def assert_not_found(response):
    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == "not_found"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["error"]["details"] == {}


def assert_invalid(response, parameter):
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    assert parameter in response.json()["error"]["details"]


def test_get_returns_the_job(alice):
    job = create(alice, name="Intro", payload={"a": [1, 2]})

    response = alice.get(f"/api/v1/jobs/{job['id']}")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == job


def test_unknown_id_is_not_found(alice):
    create(alice)

    assert_not_found(alice.get(f"/api/v1/jobs/{UNKNOWN_ID}"))


@pytest.mark.backends("sqlite")  # rejected before the store is read
@pytest.mark.parametrize("job_id", ["not-a-uuid", "123", "00000000-0000-4000-8000-00000000000g"])
def test_malformed_id_is_not_found(owner, job_id):
    assert_not_found(owner.get(f"/api/v1/jobs/{job_id}"))


def test_deleted_job_is_not_found(alice):
    job = create(alice)
    assert alice.delete(f"/api/v1/jobs/{job['id']}").status_code == 204

    assert_not_found(alice.get(f"/api/v1/jobs/{job['id']}"))


@pytest.mark.backends("sqlite")  # the store path of the tests kept on both; the rest is Python
def test_another_owners_job_is_not_found_exactly_like_an_unknown_one(server, alice, bob):
    job = create(alice)

    theirs = bob.get(f"/api/v1/jobs/{job['id']}")
    unknown = bob.get(f"/api/v1/jobs/{UNKNOWN_ID}")

    assert_not_found(theirs)
    assert theirs.json() == unknown.json()


@pytest.mark.backends("sqlite")  # the store path of the tests kept on both; the rest is Python
def test_admin_gets_any_owners_job(server, alice, admin):
    job = create(alice)

    assert admin.get(f"/api/v1/jobs/{job['id']}").json() == job


@pytest.mark.backends("sqlite")  # the store path of the tests kept on both; the rest is Python
def test_uppercase_id_names_the_same_job(alice):
    job = create(alice)

    assert alice.get(f"/api/v1/jobs/{job['id'].upper()}").json()["id"] == job["id"]


def test_include_logs_gives_the_newest_100_log_events_oldest_first(server, alice):
    job = create(alice)
    worker_steps.start(server, job["id"])
    for n in range(105):
        worker_steps.log(server, job["id"], f"line {n}", level="warning" if n % 2 else "info")
    worker_steps.progress(server, job["id"], percent=10.0)

    got = alice.get(f"/api/v1/jobs/{job['id']}", params={"include": "logs"}).json()

    logs = got.pop("logs")
    assert [log["message"] for log in logs] == [f"line {n}" for n in range(5, 105)]
    assert {log["type"] for log in logs} == {"log"}
    assert [log["seq"] for log in logs] == list(range(8, 108))
    assert [log["level"] for log in logs[:2]] == ["warning", "info"]
    assert all(log["job_id"] == job["id"] for log in logs)
    assert [log["id"] for log in logs] == sorted(log["id"] for log in logs)
    assert got == alice.get(f"/api/v1/jobs/{job['id']}").json()


def test_include_logs_of_job_without_logs_is_empty(alice):
    job = create(alice)

    assert alice.get(f"/api/v1/jobs/{job['id']}", params={"include": "logs"}).json()["logs"] == []


def test_log_events_match_the_events_route(server, alice):
    job = create(alice)
    worker_steps.start(server, job["id"])
    worker_steps.log(server, job["id"], "hello", data={"clips": 3})

    logs = alice.get(f"/api/v1/jobs/{job['id']}", params={"include": "logs"}).json()["logs"]

    assert logs == [e for e in events_of(alice, job["id"]) if e["type"] == "log"]
    assert logs[0]["data"] == {"clips": 3}


@pytest.mark.backends("sqlite")  # rejected before the store is read
@pytest.mark.parametrize("include", ["bogus", "logs,bogus", "", "LOGS"])
def test_unknown_include_is_rejected(owner, include):
    job = create(owner)

    assert_invalid(owner.get(f"/api/v1/jobs/{job['id']}", params={"include": include}), "include")


@pytest.mark.backends("sqlite")  # rejected before the store is read
def test_unknown_query_parameter_is_rejected(owner):
    job = create(owner)

    assert_invalid(owner.get(f"/api/v1/jobs/{job['id']}", params={"includes": "logs"}), "includes")


def test_as_of_returns_the_job_after_each_event(server, alice):
    job = create(alice, name="first")
    worker_steps.start(server, job["id"])
    alice.patch(f"/api/v1/jobs/{job['id']}", json={"name": "second"})
    events = events_of(alice, job["id"])

    def as_of(n):
        response = alice.get(f"/api/v1/jobs/{job['id']}", params={"as_of": n})
        assert response.status_code == 200, response.text
        return response.json()

    created, started, updated = as_of(1), as_of(2), as_of(3)

    assert (created["status"], created["version"], created["name"]) == ("pending", 1, "first")
    assert created["last_event_id"] == events[0]["id"]
    assert created["started_at"] is None
    assert (started["status"], started["version"], started["attempt"]) == ("running", 2, 1)
    assert started["last_event_id"] == events[1]["id"]
    assert started["started_at"] == events[1]["timestamp"]
    assert (updated["name"], updated["version"]) == ("second", 3)
    assert updated["last_event_id"] == events[2]["id"]
    assert updated == alice.get(f"/api/v1/jobs/{job['id']}").json()


def test_include_logs_with_as_of_shows_the_logs_up_to_that_event(server, alice):
    job = create(alice)
    worker_steps.start(server, job["id"])
    for n in range(3):
        worker_steps.log(server, job["id"], f"line {n}")

    got = alice.get(f"/api/v1/jobs/{job['id']}", params={"include": "logs", "as_of": 4}).json()

    assert got["version"] == 4
    assert [log["message"] for log in got["logs"]] == ["line 0", "line 1"]


def test_as_of_rebuilds_a_long_history(server, alice):
    job = create(alice)
    worker_steps.start(server, job["id"])
    for n in range(105):
        worker_steps.log(server, job["id"], f"line {n}")
    worker_steps.succeed(server, job["id"], result={"ok": True})
    events = {e["seq"]: e["id"] for e in events_of(alice, job["id"])}
    events |= {
        e["seq"]: e["id"]
        for e in alice.get(
            f"/api/v1/jobs/{job['id']}/events", params={"after": events[100]}
        ).json()["items"]
    }

    for seq, status in ((50, "running"), (101, "running"), (108, "succeeded")):
        got = alice.get(f"/api/v1/jobs/{job['id']}", params={"as_of": seq}).json()
        assert (got["version"], got["status"], got["last_event_id"]) == (seq, status, events[seq])


@pytest.mark.parametrize("as_of", ["0", "-1", "x", "1.5", "3"])
def test_as_of_outside_the_history_is_rejected(owner, as_of):
    job = create(owner)
    owner.patch(f"/api/v1/jobs/{job['id']}", json={"starred": True})

    assert_invalid(owner.get(f"/api/v1/jobs/{job['id']}", params={"as_of": as_of}), "as_of")


@pytest.mark.backends("sqlite")  # rejected before the store is read
@pytest.mark.parametrize("as_of", ["--1", "\u00b2"])
def test_as_of_that_only_looks_numeric_is_rejected(shared_server, owner, as_of):
    job = create(owner)

    response = owner.get(f"/api/v1/jobs/{job['id']}", params={"as_of": as_of})

    assert_invalid(response, "as_of")


@pytest.mark.backends("sqlite")  # the store path of the tests kept on both; the rest is Python
def test_as_of_of_another_owners_job_is_not_found(server, alice, bob):
    job = create(alice)

    assert_not_found(bob.get(f"/api/v1/jobs/{job['id']}", params={"as_of": 1}))


def test_as_of_of_a_deleted_job_is_not_found(alice):
    job = create(alice)
    alice.delete(f"/api/v1/jobs/{job['id']}")

    assert_not_found(alice.get(f"/api/v1/jobs/{job['id']}", params={"as_of": 1}))
