"""The JSON form of the events routes (API.md, "Events: pages or a live stream")."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests import support, worker_steps
from tests.support import LiveServer

pytestmark = pytest.mark.backends("sqlite", "postgres")

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
EVENT_KEYS = {"id", "job_id", "seq", "type", "timestamp", "level", "message", "data"}


@pytest.fixture(scope="module")
def shared(module_settings) -> Iterator[LiveServer]:
    """One server for the tests that only check how requests are refused."""
    live = LiveServer(module_settings("events")).start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def carol(shared) -> Iterator[httpx.Client]:
    with shared.client(f"carol-{uuid.uuid4().hex[:8]}") as client:
        yield client


_create = functools.partial(support.create, type="video.render")


def _finished_job(server, client) -> dict:
    """A job with every kind of worker event, succeeded: 7 events."""
    job = _create(client, name="intro", payload={"script": "hi"}, metadata={"p": 1})
    worker_steps.start(server, job["id"])
    worker_steps.progress(server, job["id"], percent=40.0, stage="render", total=10, completed=4)
    worker_steps.log(server, job["id"], "searching", level="info", data={"clips": 3})
    worker_steps.log(server, job["id"], "slow disk", level="warning")
    worker_steps.progress(server, job["id"], percent=100.0, completed=10)
    worker_steps.succeed(server, job["id"], result={"url": "x"}, result_type="video")
    return job


def _all_pages(client, path: str, **params) -> tuple[list[dict], list[dict]]:
    items: list[dict] = []
    pages: list[dict] = []
    after = params.pop("after", 0)
    while True:
        response = client.get(path, params={**params, "after": after})
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        items += page["items"]
        if not page["has_more"]:
            return items, pages
        after = page["next_after"]


def _assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    return body["error"]


def test_job_events_are_ordered_with_consecutive_seqs(server, alice):
    job = _finished_job(server, alice)
    page = alice.get(f"/api/v1/jobs/{job['id']}/events").json()
    items = page["items"]
    assert [event["type"] for event in items] == [
        "created",
        "started",
        "progress",
        "log",
        "log",
        "progress",
        "succeeded",
    ]
    ids = [event["id"] for event in items]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert [event["seq"] for event in items] == list(range(1, 8))
    assert page["next_after"] == ids[-1]
    assert page["has_more"] is False
    assert page["job_status"] == "succeeded"
    assert page["finished"] is True
    final = alice.get(f"/api/v1/jobs/{job['id']}").json()
    assert final["version"] == 7
    assert final["last_event_id"] == ids[-1]


def test_job_events_page_by_after_and_limit(server, alice):
    job = _finished_job(server, alice)
    everything = alice.get(f"/api/v1/jobs/{job['id']}/events").json()["items"]
    items, pages = _all_pages(alice, f"/api/v1/jobs/{job['id']}/events", limit=3)
    assert items == everything
    assert [len(page["items"]) for page in pages] == [3, 3, 1]
    assert [page["has_more"] for page in pages] == [True, True, False]
    assert [page["finished"] for page in pages] == [False, False, True]
    assert {page["job_status"] for page in pages} == {"succeeded"}
    assert [page["next_after"] for page in pages] == [
        everything[2]["id"],
        everything[5]["id"],
        everything[6]["id"],
    ]


def test_job_events_page_that_ends_exactly_at_the_last_event_is_finished(server, alice):
    job = _finished_job(server, alice)
    page = alice.get(f"/api/v1/jobs/{job['id']}/events", params={"limit": 7}).json()
    assert len(page["items"]) == 7
    assert page["has_more"] is False
    assert page["finished"] is True


def test_job_events_after_the_last_event_is_empty_and_keeps_the_cursor(server, alice):
    job = _finished_job(server, alice)
    last = alice.get(f"/api/v1/jobs/{job['id']}").json()["last_event_id"]
    page = alice.get(f"/api/v1/jobs/{job['id']}/events", params={"after": last}).json()
    assert page["items"] == []
    assert page["next_after"] == last
    assert page["has_more"] is False
    assert page["finished"] is True
    beyond = alice.get(f"/api/v1/jobs/{job['id']}/events", params={"after": last + 1000}).json()
    assert beyond["items"] == []
    assert beyond["next_after"] == last + 1000


def test_unfinished_job_is_never_finished(server, alice):
    job = _create(alice)
    worker_steps.start(server, job["id"])
    page = alice.get(f"/api/v1/jobs/{job['id']}/events").json()
    assert page["has_more"] is False
    assert page["job_status"] == "running"
    assert page["finished"] is False
    pending = _create(alice)
    page = alice.get(f"/api/v1/jobs/{pending['id']}/events").json()
    assert page["job_status"] == "pending"
    assert page["finished"] is False


def test_cancelled_and_failed_jobs_are_finished(server, alice):
    cancelled = _create(alice)
    alice.post(f"/api/v1/jobs/{cancelled['id']}/cancel", json={"reason": "no longer needed"})
    failed = _create(alice)
    worker_steps.start(server, failed["id"])
    worker_steps.fail(server, failed["id"], message="disk full")
    for job, status in ((cancelled, "cancelled"), (failed, "failed")):
        page = alice.get(f"/api/v1/jobs/{job['id']}/events").json()
        assert page["job_status"] == status
        assert page["finished"] is True
    cancel_event = alice.get(f"/api/v1/jobs/{cancelled['id']}/events").json()["items"][-1]
    assert cancel_event["type"] == "cancelled"
    assert cancel_event["data"] == {"reason": "no longer needed"}
    fail_event = alice.get(f"/api/v1/jobs/{failed['id']}/events").json()["items"][-1]
    assert fail_event["type"] == "failed"
    assert fail_event["data"]["error"]["message"] == "disk full"


@pytest.mark.backends("sqlite")  # refused before the store is read
@pytest.mark.parametrize("route", ["job", "all"])
@pytest.mark.parametrize(
    ("params", "name"),
    [
        pytest.param({"limit": "0"}, "limit", id="limit-0"),
        pytest.param({"limit": "1001"}, "limit", id="limit-1001"),
        pytest.param({"limit": "-1"}, "limit", id="limit-negative"),
        pytest.param({"limit": "ten"}, "limit", id="limit-text"),
        pytest.param({"limit": "2.5"}, "limit", id="limit-float"),
        pytest.param({"after": "-1"}, "after", id="after-negative"),
        pytest.param({"after": "x"}, "after", id="after-text"),
    ],
)
def test_invalid_page_parameters_are_400_naming_them(carol, route, params, name):
    job = _create(carol)
    path = f"/api/v1/jobs/{job['id']}/events" if route == "job" else "/api/v1/events"
    error = _assert_error(carol.get(path, params=params), 400, "invalid_request")
    assert name in error["details"]


@pytest.mark.parametrize("route", ["job", "all"])
def test_limit_bounds_are_inclusive(server, alice, route):
    job = _finished_job(server, alice)
    path = f"/api/v1/jobs/{job['id']}/events" if route == "job" else "/api/v1/events"
    one = alice.get(path, params={"limit": 1})
    assert one.status_code == 200
    assert len(one.json()["items"]) == 1
    assert one.json()["has_more"] is True
    most = alice.get(path, params={"limit": 1000})
    assert most.status_code == 200
    assert len(most.json()["items"]) == 7
    default = alice.get(path).json()
    assert default["items"] == most.json()["items"]


def test_event_shapes(server, alice):
    job = _finished_job(server, alice)
    items = alice.get(f"/api/v1/jobs/{job['id']}/events").json()["items"]
    for event in items:
        assert set(event) == EVENT_KEYS
        assert event["job_id"] == job["id"]
        assert isinstance(event["id"], int)
        assert TIMESTAMP.match(event["timestamp"]), event["timestamp"]
        if event["type"] != "log":
            assert event["level"] is None
            assert event["message"] is None
    created, started, progress, info, warning, done, succeeded = items
    assert created["data"]["type"] == "video.render"
    assert created["data"]["name"] == "intro"
    assert created["data"]["payload"] == {"script": "hi"}
    assert created["data"]["metadata"] == {"p": 1}
    assert created["data"]["priority"] == "normal"
    assert created["data"]["max_attempts"] == 1
    assert started["data"]["attempt"] == 1
    assert started["data"]["worker_id"] == "w-1"
    assert progress["data"] == {"percent": 40.0, "stage": "render", "total": 10, "completed": 4}
    assert done["data"] == {"percent": 100.0, "completed": 10}
    assert (info["level"], info["message"], info["data"]) == ("info", "searching", {"clips": 3})
    assert (warning["level"], warning["message"], warning["data"]) == (
        "warning",
        "slow disk",
        None,
    )
    assert succeeded["data"] == {"result": {"url": "x"}, "result_type": "video"}


def test_created_event_never_exposes_the_idempotency_key(server, alice):
    key = "secret-idempotency-key-4711"
    response = alice.post("/api/v1/jobs", json={"type": "t"}, headers={"Idempotency-Key": key})
    job = response.json()
    for path in (f"/api/v1/jobs/{job['id']}/events", "/api/v1/events"):
        text = alice.get(path).text
        assert key not in text
        assert "idempotency" not in text
        assert "request_hash" not in text
    created = alice.get(f"/api/v1/jobs/{job['id']}/events").json()["items"][0]
    assert created["type"] == "created"
    assert created["data"]["type"] == "t"
    assert created["data"]["owner"] == "alice"


def test_started_event_never_exposes_the_lease_token(server, alice):
    job = _create(alice)
    worker_steps.start(server, job["id"])
    token = server.runtime.store.load(uuid.UUID(job["id"])).lease_token
    assert token
    for path in (f"/api/v1/jobs/{job['id']}/events", "/api/v1/events"):
        text = alice.get(path).text
        assert token not in text
        assert "lease_token" not in text
    started = alice.get(f"/api/v1/jobs/{job['id']}/events").json()["items"][1]
    assert started["type"] == "started"
    assert "lease_expires_at" in started["data"]
    assert TIMESTAMP.match(started["data"]["lease_expires_at"])


def test_updated_event_holds_the_changes(server, alice):
    job = _create(alice)
    alice.patch(f"/api/v1/jobs/{job['id']}", json={"name": "renamed", "starred": True})
    updated = alice.get(f"/api/v1/jobs/{job['id']}/events").json()["items"][-1]
    assert updated["type"] == "updated"
    assert updated["seq"] == 2
    assert updated["data"] == {"name": "renamed", "starred": True}


def test_global_events_are_ordered_by_id_across_jobs(server, alice):
    first = _create(alice)
    second = _create(alice)
    worker_steps.start(server, first["id"])
    alice.patch(f"/api/v1/jobs/{second['id']}", json={"starred": True})
    worker_steps.log(server, first["id"], "line")
    page = alice.get("/api/v1/events").json()
    items = page["items"]
    assert set(page) == {"items", "next_after", "has_more"}
    assert [(event["job_id"], event["type"]) for event in items] == [
        (first["id"], "created"),
        (second["id"], "created"),
        (first["id"], "started"),
        (second["id"], "updated"),
        (first["id"], "log"),
    ]
    ids = [event["id"] for event in items]
    assert ids == sorted(ids)
    assert page["next_after"] == ids[-1]
    assert page["has_more"] is False
    for job in (first, second):
        seqs = [event["seq"] for event in items if event["job_id"] == job["id"]]
        assert seqs == list(range(1, len(seqs) + 1))


def test_global_events_page_by_after_and_limit(server, alice):
    for _ in range(3):
        _finished_job(server, alice)
    everything = alice.get("/api/v1/events", params={"limit": 1000}).json()["items"]
    assert len(everything) == 21
    items, pages = _all_pages(alice, "/api/v1/events", limit=4)
    assert items == everything
    assert len(pages) == 6
    assert all(page["has_more"] for page in pages[:-1])
    middle = alice.get("/api/v1/events", params={"after": everything[9]["id"]}).json()
    assert middle["items"] == everything[10:]
    empty = alice.get("/api/v1/events", params={"after": everything[-1]["id"]}).json()
    assert empty == {"items": [], "next_after": everything[-1]["id"], "has_more": False}


def test_global_events_filter_by_type(server, alice):
    job = _finished_job(server, alice)
    logs = alice.get("/api/v1/events", params={"type": "log"}).json()["items"]
    assert [event["message"] for event in logs] == ["searching", "slow disk"]
    several = alice.get("/api/v1/events", params={"type": "created,succeeded"}).json()["items"]
    assert [event["type"] for event in several] == ["created", "succeeded"]
    repeated = alice.get("/api/v1/events", params=[("type", "created"), ("type", "succeeded")])
    assert repeated.json()["items"] == several
    assert all(event["job_id"] == job["id"] for event in several)


def test_global_events_filter_by_job_id(server, alice):
    first = _finished_job(server, alice)
    second = _create(alice)
    only = alice.get("/api/v1/events", params={"job_id": second["id"]}).json()["items"]
    assert [event["type"] for event in only] == ["created"]
    both = alice.get("/api/v1/events", params={"job_id": f"{first['id']},{second['id']}"})
    assert len(both.json()["items"]) == 8
    combined = alice.get("/api/v1/events", params={"job_id": first["id"], "type": "progress"})
    assert [event["seq"] for event in combined.json()["items"]] == [3, 6]
    unknown = alice.get("/api/v1/events", params={"job_id": str(uuid.uuid4())})
    assert unknown.status_code == 200
    assert unknown.json()["items"] == []


@pytest.mark.backends("sqlite")  # refused before the store is read
@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"type": "warn"}, id="warn"),
        pytest.param({"type": "warning"}, id="warning-is-a-level"),
        pytest.param({"type": "nope"}, id="unknown"),
        pytest.param({"type": "log,nope"}, id="one-unknown"),
        pytest.param({"type": ""}, id="empty"),
    ],
)
def test_invalid_event_type_filter_is_400(carol, params):
    error = _assert_error(carol.get("/api/v1/events", params=params), 400, "invalid_request")
    assert "type" in error["details"]


@pytest.mark.backends("sqlite")  # refused before the store is read
@pytest.mark.parametrize("value", ["not-a-uuid", "123", "g" * 32])
def test_non_uuid_job_id_filter_is_400(carol, value):
    error = _assert_error(
        carol.get("/api/v1/events", params={"job_id": value}), 400, "invalid_request"
    )
    assert "job_id" in error["details"]


def test_every_event_type_is_a_valid_filter(carol):
    alice = carol
    types = (
        "created,started,progress,log,succeeded,failed,retry_scheduled,"
        "cancel_requested,cancelled,updated,deleted"
    )
    assert alice.get("/api/v1/events", params={"type": types}).status_code == 200


def test_deleted_jobs_events_leave_the_owners_feed_but_not_the_admins(server, alice, admin):
    kept = _create(alice)
    gone = _create(alice)
    worker_steps.start(server, gone["id"])
    assert alice.delete(f"/api/v1/jobs/{gone['id']}").status_code == 204
    own = alice.get("/api/v1/events").json()["items"]
    assert [event["job_id"] for event in own] == [kept["id"]]
    filtered = alice.get("/api/v1/events", params={"job_id": gone["id"]}).json()
    assert filtered["items"] == []
    everything = admin.get("/api/v1/events").json()["items"]
    assert [(event["job_id"], event["type"]) for event in everything] == [
        (kept["id"], "created"),
        (gone["id"], "created"),
        (gone["id"], "started"),
        (gone["id"], "cancelled"),
        (gone["id"], "deleted"),
    ]
    deleted = admin.get("/api/v1/events", params={"type": "deleted"}).json()["items"]
    assert [event["job_id"] for event in deleted] == [gone["id"]]


@pytest.mark.backends("sqlite")  # refused before the store is read
def test_events_need_the_read_scope(shared):
    with shared.client("alice", "jobs:write") as writer_only:
        _assert_error(writer_only.get("/api/v1/events"), 403, "forbidden")
        response = writer_only.get(f"/api/v1/jobs/{uuid.uuid4()}/events")
        _assert_error(response, 403, "forbidden")


def test_retry_cancel_request_and_delete_event_shapes(server, alice, admin):
    retried = _create(alice, max_attempts=2)
    worker_steps.start(server, retried["id"])
    worker_steps.fail(server, retried["id"], message="flaky", retry=True)
    alice.post(f"/api/v1/jobs/{retried['id']}/cancel")
    items = alice.get(f"/api/v1/jobs/{retried['id']}/events").json()["items"]
    assert [event["type"] for event in items] == [
        "created",
        "started",
        "retry_scheduled",
        "cancelled",
    ]
    retry = items[2]["data"]
    assert set(retry) == {"error", "run_at"}
    assert retry["error"] == {"message": "flaky", "code": "error", "details": None}
    assert TIMESTAMP.match(retry["run_at"])
    assert retry["run_at"] > items[2]["timestamp"]
    assert items[3]["data"] == {"reason": None}
    job = _create(alice)
    worker_steps.start(server, job["id"])
    alice.post(f"/api/v1/jobs/{job['id']}/cancel", json={"reason": "stop"})
    worker_steps.acknowledge_cancel(server, job["id"])
    assert alice.delete(f"/api/v1/jobs/{job['id']}").status_code == 204
    items = admin.get(f"/api/v1/jobs/{job['id']}/events").json()["items"]
    assert [event["type"] for event in items] == [
        "created",
        "started",
        "cancel_requested",
        "cancelled",
        "deleted",
    ]
    assert items[2]["data"] == {"reason": "stop"}
    assert items[4]["data"] == {}
    assert all(event["level"] is None for event in items)


@pytest.mark.backends("sqlite")  # refused before the store is read
@pytest.mark.parametrize("route", ["job", "all"])
def test_after_beyond_64_bits_is_400_not_500(carol, route):
    job = _create(carol)
    path = f"/api/v1/jobs/{job['id']}/events" if route == "job" else "/api/v1/events"
    response = carol.get(path, params={"after": str(2**63)})
    error = _assert_error(response, 400, "invalid_request")
    assert "after" in error["details"]


def test_largest_64_bit_after_is_an_empty_page(carol):
    largest = 2**63 - 1
    page = carol.get("/api/v1/events", params={"after": str(largest)})
    assert page.status_code == 200
    assert page.json() == {"items": [], "next_after": largest, "has_more": False}


@pytest.mark.backends("sqlite")  # refused before the store is read
@pytest.mark.parametrize(
    "params", [{"after": "\u0663"}, {"limit": "\uff11\uff10"}], ids=["arabic-indic", "fullwidth"]
)
def test_non_ascii_digits_are_400(carol, params):
    error = _assert_error(carol.get("/api/v1/events", params=params), 400, "invalid_request")
    assert set(params) <= set(error["details"])
