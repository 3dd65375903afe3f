from __future__ import annotations

import asyncio
import re

import pytest

pytestmark = pytest.mark.backends("sqlite", "postgres")

TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
JOB_FIELDS = {
    "id",
    "type",
    "name",
    "category",
    "status",
    "priority",
    "owner",
    "parent_id",
    "replayed_from",
    "payload",
    "metadata",
    "starred",
    "progress",
    "children",
    "cancel_requested",
    "result",
    "result_type",
    "error",
    "attempt",
    "max_attempts",
    "run_at",
    "version",
    "last_event_id",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
}


def footprint(admin):
    """Everything written so far: the number of live jobs and the ids of all events."""
    events = admin.get("/api/v1/events", params={"limit": 1000}).json()
    return admin.get("/api/v1/jobs").json()["total"], [event["id"] for event in events["items"]]


def create(client, headers=None, **fields):
    response = client.post("/api/v1/jobs", json={"type": "t", **fields}, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response


def test_create_answers_201_with_location_and_the_job_a_get_returns(alice):
    response = alice.post("/api/v1/jobs", json={"type": "video.render"})

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    job = response.json()
    assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert alice.get(response.headers["location"]).json() == job


def test_created_job_has_the_documented_defaults(alice):
    job = create(alice).json()

    assert set(job) == JOB_FIELDS
    assert job["status"] == "pending"
    assert job["priority"] == "normal"
    assert (job["attempt"], job["max_attempts"]) == (0, 1)
    assert job["starred"] is False
    assert job["cancel_requested"] is False
    assert job["progress"] == dict.fromkeys(
        ("percent", "stage", "message", "total", "completed", "failed")
    )
    assert job["children"] is None
    assert (job["name"], job["category"], job["payload"]) == (None, None, None)
    assert job["metadata"] in ({}, None)
    assert (job["parent_id"], job["replayed_from"]) == (None, None)
    assert (job["result"], job["result_type"], job["error"]) == (None, None, None)
    assert (job["run_at"], job["started_at"], job["finished_at"]) == (None, None, None)
    assert job["version"] == 1
    assert job["last_event_id"] >= 1
    assert job["owner"] == "alice"


def test_created_job_timestamps_are_rfc3339_utc_with_milliseconds(alice):
    job = create(alice).json()

    assert TIMESTAMP.fullmatch(job["created_at"])
    assert job["updated_at"] == job["created_at"]


def test_created_job_ids_are_uuids_and_last_event_id_is_its_created_event(alice):
    job = create(alice).json()

    # UUIDv7: time-ordered, so new jobs append to the indexes keyed by id.
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", job["id"]
    )
    events = alice.get(f"/api/v1/jobs/{job['id']}/events").json()["items"]
    assert [(e["type"], e["seq"], e["id"]) for e in events] == [
        ("created", 1, job["last_event_id"])
    ]


def test_owner_is_the_token_subject(server, alice, bob):
    assert create(alice).json()["owner"] == "alice"
    assert create(bob).json()["owner"] == "bob"


def test_every_optional_field_round_trips(alice):
    body = {
        "type": "video.render",
        "payload": {"script": "Once upon a time", "scenes": [1, 2.5, None, True], "nested": {}},
        "name": "Intro video",
        "category": "export",
        "priority": "high",
        "metadata": {"project_id": "p-42", "tags": ["a", "b"]},
        "max_attempts": 3,
        "run_at": "2030-01-02T03:04:05.678Z",
    }

    job = alice.post("/api/v1/jobs", json=body).json()

    assert {key: job[key] for key in body} == body
    assert alice.get(f"/api/v1/jobs/{job['id']}").json() == job


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("text", id="string"),
        pytest.param(42, id="number"),
        pytest.param([1, "two", None], id="list"),
        pytest.param(False, id="bool"),
        pytest.param({"emoji": "\u2603 caf\u00e9"}, id="unicode"),
    ],
)
def test_payload_may_be_any_json(alice, payload):
    assert create(alice, payload=payload).json()["payload"] == payload


def test_run_at_with_an_offset_is_normalised_to_utc(alice):
    job = create(alice, run_at="2030-01-02T05:04:05.678+02:00").json()

    assert job["run_at"] == "2030-01-02T03:04:05.678Z"


def test_run_at_accepts_epoch_milliseconds(alice):
    job = create(alice, run_at=1_893_456_000_123).json()

    assert job["run_at"] == "2030-01-01T00:00:00.123Z"


def test_boundary_values_are_accepted(alice):
    job = create(alice, type="a" * 64, name="n" * 200, category="c" * 64, max_attempts=100).json()

    assert (job["type"], job["max_attempts"]) == ("a" * 64, 100)
    assert create(alice, type="0.a_b-c", max_attempts=1).json()["type"] == "0.a_b-c"


def test_null_optional_fields_take_their_defaults(alice):
    job = create(alice, name=None, category=None, payload=None, metadata=None, run_at=None).json()

    assert (job["name"], job["category"], job["payload"], job["run_at"]) == (None,) * 4


@pytest.mark.backends("sqlite")  # rejected before the store is read
@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({}, "type", id="type-missing"),
        pytest.param({"type": None}, "type", id="type-null"),
        pytest.param({"type": 5}, "type", id="type-not-string"),
        pytest.param({"type": "Video.render"}, "type", id="type-uppercase"),
        pytest.param({"type": "a" * 65}, "type", id="type-65-chars"),
        pytest.param({"type": ".hidden"}, "type", id="type-leading-dot"),
        pytest.param({"type": ""}, "type", id="type-empty"),
        pytest.param({"type": "a b"}, "type", id="type-space"),
        pytest.param({"type": "t", "priority": "urgent"}, "priority", id="priority-unknown"),
        pytest.param({"type": "t", "priority": "HIGH"}, "priority", id="priority-uppercase"),
        pytest.param({"type": "t", "max_attempts": 0}, "max_attempts", id="max-attempts-0"),
        pytest.param({"type": "t", "max_attempts": 101}, "max_attempts", id="max-attempts-101"),
        pytest.param({"type": "t", "max_attempts": "3"}, "max_attempts", id="max-attempts-str"),
        pytest.param({"type": "t", "max_attempts": True}, "max_attempts", id="max-attempts-bool"),
        pytest.param({"type": "t", "max_attempts": 2.5}, "max_attempts", id="max-attempts-float"),
        pytest.param({"type": "t", "name": "n" * 201}, "name", id="name-too-long"),
        pytest.param({"type": "t", "name": 7}, "name", id="name-not-string"),
        pytest.param({"type": "t", "category": ""}, "category", id="category-empty"),
        pytest.param({"type": "t", "category": "c" * 65}, "category", id="category-too-long"),
        pytest.param({"type": "t", "metadata": [1]}, "metadata", id="metadata-list"),
        pytest.param({"type": "t", "metadata": "x"}, "metadata", id="metadata-string"),
        pytest.param({"type": "t", "bogus": 1}, "bogus", id="unknown-field"),
        pytest.param({"type": "t", "status": "succeeded"}, "status", id="read-only-field"),
        pytest.param([{"type": "t"}], "body", id="body-list"),
        pytest.param("t", "body", id="body-string"),
        pytest.param({"type": "t", "run_at": "tomorrow"}, "run_at", id="run-at-garbage"),
        pytest.param({"type": "t", "run_at": "2030-01-01T00:00:00"}, "run_at", id="run-at-naive"),
        pytest.param({"type": "t", "run_at": "2030-01-01"}, "run_at", id="run-at-date-only"),
        pytest.param({"type": "t", "run_at": -1}, "run_at", id="run-at-negative"),
        pytest.param({"type": "t", "run_at": 1.5e12 + 0.5}, "run_at", id="run-at-fraction"),
        pytest.param({"type": "t", "run_at": True}, "run_at", id="run-at-bool"),
        pytest.param({"type": "t", "children": []}, "children", id="children-empty"),
        pytest.param({"type": "t", "children": {}}, "children", id="children-not-a-list"),
        pytest.param(
            {"type": "t", "children": [{"type": "c"}, {"type": "Bad"}]},
            "children[1].type",
            id="child-invalid",
        ),
        pytest.param(
            {"type": "t", "children": [{"type": "c", "children": [{"type": "d"}]}]},
            "children[0].children",
            id="grandchildren",
        ),
    ],
)
def test_invalid_body_is_rejected_naming_the_field_and_writes_nothing(shared_server, body, field):
    with shared_server.client("alice") as alice, shared_server.client("root", "admin") as admin:
        create(alice)
        before = footprint(admin)

        response = alice.post("/api/v1/jobs", json=body)
        after = footprint(admin)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in error["details"]
    assert isinstance(error["message"], str) and error["message"]
    assert after == before


@pytest.mark.backends("sqlite")  # rejected before the store is read
@pytest.mark.parametrize("run_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_run_at_outside_the_utc_calendar_is_rejected(server, alice, admin, run_at):
    response = alice.post("/api/v1/jobs", json={"type": "t", "run_at": run_at})

    assert response.status_code == 400
    assert "run_at" in response.json()["error"]["details"]
    assert footprint(admin) == (0, [])


@pytest.mark.backends("sqlite")  # rejected before the store is read
def test_every_invalid_field_is_named_at_once(alice):
    response = alice.post("/api/v1/jobs", json={"type": "T", "priority": "x", "max_attempts": 0})

    assert set(response.json()["error"]["details"]) >= {"type", "priority", "max_attempts"}


@pytest.mark.backends("sqlite")  # rejected before the store is read
def test_empty_body_is_rejected_and_writes_nothing(alice, admin):
    response = alice.post("/api/v1/jobs", headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert "body" in response.json()["error"]["details"]
    assert footprint(admin) == (0, [])


def test_same_idempotency_key_and_body_replays_the_original_job(alice):
    headers = {"Idempotency-Key": "order-1"}
    first = create(alice, headers, payload={"n": 1})

    again = create(alice, headers, payload={"n": 1})

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.json() == first.json()
    assert alice.get("/api/v1/jobs").json()["total"] == 1


def test_first_creation_is_not_marked_as_replayed(alice):
    response = create(alice, {"Idempotency-Key": "k"})

    assert "idempotent-replayed" not in response.headers


def test_idempotent_replay_ignores_key_order_and_whitespace(alice, admin):
    headers = {"Idempotency-Key": "order-2", "content-type": "application/json"}
    first = alice.post(
        "/api/v1/jobs",
        content=b'{"type": "t", "payload": {"a": 1, "b": [1, 2]}, "name": "x"}',
        headers=headers,
    )
    events = footprint(admin)

    again = alice.post(
        "/api/v1/jobs",
        content=b'{"name":"x","payload":{"b":[1,2],"a":1},\n "type":"t"}',
        headers=headers,
    )

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert footprint(admin) == events


def test_same_idempotency_key_with_a_different_body_conflicts(alice, admin):
    headers = {"Idempotency-Key": "order-3"}
    create(alice, headers, payload={"n": 1})
    before = footprint(admin)

    response = alice.post("/api/v1/jobs", json={"type": "t", "payload": {"n": 2}}, headers=headers)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert footprint(admin) == before


def test_idempotency_keys_are_scoped_to_their_owner(server, alice, bob, admin):
    headers = {"Idempotency-Key": "shared"}
    mine = create(alice, headers)
    theirs = create(bob, headers)

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]
    assert theirs.json()["owner"] == "bob"
    assert footprint(admin)[0] == 2


def test_idempotency_key_of_255_characters_is_accepted(alice):
    assert create(alice, {"Idempotency-Key": "k" * 255}).status_code == 201


@pytest.mark.backends("sqlite")  # rejected before the store is read
def test_idempotency_key_over_255_characters_is_rejected(alice, admin):
    response = alice.post(
        "/api/v1/jobs", json={"type": "t"}, headers={"Idempotency-Key": "k" * 256}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert "Idempotency-Key" in response.json()["error"]["details"]
    assert footprint(admin) == (0, [])


def test_idempotency_key_of_a_deleted_job_conflicts(alice, admin):
    headers = {"Idempotency-Key": "gone"}
    job = create(alice, headers).json()
    assert alice.delete(f"/api/v1/jobs/{job['id']}").status_code == 204
    before = footprint(admin)

    response = alice.post("/api/v1/jobs", json={"type": "t"}, headers=headers)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert footprint(admin) == before


def test_idempotency_key_keeps_replaying_after_the_job_changed(server, alice):
    headers = {"Idempotency-Key": "k"}
    job = create(alice, headers).json()
    alice.post(f"/api/v1/jobs/{job['id']}/cancel")

    again = create(alice, headers)

    assert again.status_code == 200
    assert again.json()["id"] == job["id"]


@pytest.mark.anyio
async def test_concurrent_requests_with_one_idempotency_key_create_one_job(server, admin):
    body = {"type": "t", "payload": {"n": 1}}
    clients = [server.async_client() for _ in range(8)]
    try:
        responses = await asyncio.gather(
            *(
                client.post("/api/v1/jobs", json=body, headers={"Idempotency-Key": "race"})
                for client in clients
            )
        )
    finally:
        for client in clients:
            await client.aclose()

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 7 + [201]
    assert len({response.json()["id"] for response in responses}) == 1
    replayed = [r for r in responses if r.status_code == 200]
    assert all(r.headers["idempotent-replayed"] == "true" for r in replayed)
    total, events = footprint(admin)
    assert (total, len(events)) == (1, 1)
