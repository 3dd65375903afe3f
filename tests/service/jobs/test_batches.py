"""Batches over real HTTP: a parent and its children, and the parent following them."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from service.store import verification
from tests.support import LiveServer, call, claim
from tests.support import create_for_worker as create

pytestmark = pytest.mark.backends("sqlite", "postgres")


@pytest.fixture
def worker(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client("host-1", "worker") as client:
        yield client


def batch(client: httpx.Client, *child_types: str, **more: object) -> dict:
    children = [{"type": t, "name": f"child {i}"} for i, t in enumerate(child_types)]
    return create(client, type="t.parent", children=children, **more)


def get(client: httpx.Client, job_id: str) -> dict:
    job: dict = client.get(f"/api/v1/jobs/{job_id}").json()
    return job


def children_of(client: httpx.Client, parent_id: str) -> list[dict]:
    page = client.get("/api/v1/jobs", params={"parent_id": parent_id, "sort": "created_at",
                                             "order": "asc"}).json()  # fmt: skip
    items: list[dict] = page["items"]
    return items


def test_a_batch_is_created_in_one_request(alice: httpx.Client, worker: httpx.Client) -> None:
    parent = batch(alice, "t.child", "t.child", "t.other")
    assert parent["status"] == "running"
    assert parent["children"] == {"total": 3, "pending": 3, "running": 0, "succeeded": 0,
                                  "failed": 0, "cancelled": 0}  # fmt: skip
    # API.md: a parent's progress counters aggregate its children from creation.
    assert parent["progress"] == {"percent": 0.0, "stage": None, "message": None, "total": 3,
                                  "completed": 0, "failed": 0}  # fmt: skip
    assert get(alice, parent["id"])["progress"] == parent["progress"]
    children = children_of(alice, parent["id"])
    assert [c["name"] for c in children] == ["child 0", "child 1", "child 2"]
    assert {c["parent_id"] for c in children} == {parent["id"]}
    assert {c["owner"] for c in children} == {"alice"}
    assert claim(worker, ["t.parent"]) is None  # a parent is never claimed


def test_an_invalid_child_creates_nothing(alice: httpx.Client) -> None:
    before = alice.get("/api/v1/jobs").json()["total"]
    body = {"type": "t.parent", "children": [{"type": "t.ok"}, {"type": "t.ok", "max_attempts": 0}]}
    response = alice.post("/api/v1/jobs", json=body)
    assert response.status_code == 400
    assert "children[1].max_attempts" in response.json()["error"]["details"]
    assert alice.get("/api/v1/jobs").json()["total"] == before


def test_the_parent_follows_its_children_and_succeeds(
    alice: httpx.Client, worker: httpx.Client
) -> None:
    parent = batch(alice, "t.child", "t.child")
    first = claim(worker, ["t.child"])
    assert first is not None
    assert get(alice, parent["id"])["children"]["running"] == 1
    assert call(worker, first, "succeed", {}).status_code == 200
    halfway = get(alice, parent["id"])
    assert halfway["status"] == "running"
    assert halfway["progress"]["completed"] == 1 and halfway["progress"]["total"] == 2
    assert halfway["progress"]["percent"] == 50
    second = claim(worker, ["t.child"])
    assert second is not None
    call(worker, second, "succeed", {})
    done = get(alice, parent["id"])
    assert done["status"] == "succeeded"
    assert done["children"]["succeeded"] == 2 and done["children"]["running"] == 0


def test_a_failed_child_fails_the_parent_once_all_have_finished(
    alice: httpx.Client, worker: httpx.Client
) -> None:
    parent = batch(alice, "t.child", "t.child")
    first = claim(worker, ["t.child"])
    assert first is not None
    call(worker, first, "fail", {"error": {"message": "nope"}, "retry": False})
    assert get(alice, parent["id"])["status"] == "running"
    assert get(alice, parent["id"])["progress"]["failed"] == 1
    second = claim(worker, ["t.child"])
    assert second is not None
    call(worker, second, "succeed", {})
    final = get(alice, parent["id"])
    assert final["status"] == "failed"
    assert final["error"]["code"] == "children_failed"
    assert final["children"]["failed"] == 1 and final["children"]["succeeded"] == 1


def test_a_retried_child_counts_as_pending_again(alice: httpx.Client, worker: httpx.Client) -> None:
    parent = create(alice, type="t.parent", children=[{"type": "t.child", "max_attempts": 2}])
    first = claim(worker, ["t.child"])
    assert first is not None
    call(worker, first, "fail", {"error": {"message": "flaky"}})
    counts = get(alice, parent["id"])["children"]
    assert counts["pending"] == 1 and counts["running"] == 0 and counts["failed"] == 0


def test_cancelling_a_parent_midway_reaches_every_unfinished_child(
    alice: httpx.Client, worker: httpx.Client
) -> None:
    parent = batch(alice, "t.child", "t.child", "t.child")
    done = claim(worker, ["t.child"])
    assert done is not None
    call(worker, done, "succeed", {})
    running = claim(worker, ["t.child"])
    assert running is not None
    cancelling = alice.post(f"/api/v1/jobs/{parent['id']}/cancel").json()
    assert cancelling["status"] == "running" and cancelling["cancel_requested"] is True
    statuses = sorted(
        (c["status"], c["cancel_requested"]) for c in children_of(alice, parent["id"])
    )
    assert statuses == [("cancelled", False), ("running", True), ("succeeded", False)]
    assert call(worker, running, "heartbeat").json()["cancel_requested"] is True
    call(worker, running, "cancelled")
    final = get(alice, parent["id"])
    assert final["status"] == "cancelled"
    assert final["children"] == {"total": 3, "pending": 0, "running": 0, "succeeded": 1,
                                 "failed": 0, "cancelled": 2}  # fmt: skip
    assert claim(worker, ["t.child"]) is None


def test_deleting_a_parent_cancels_its_children(alice: httpx.Client, worker: httpx.Client) -> None:
    parent = batch(alice, "t.child", "t.child")
    running = claim(worker, ["t.child"])
    assert running is not None
    assert alice.delete(f"/api/v1/jobs/{parent['id']}").status_code == 204
    assert alice.get(f"/api/v1/jobs/{parent['id']}").status_code == 404
    children = children_of(alice, parent["id"])
    assert sorted((c["status"], c["cancel_requested"]) for c in children) == [
        ("cancelled", False), ("running", True)
    ]  # fmt: skip
    assert call(worker, running, "cancelled").status_code == 200


def test_a_batch_survives_a_restart_and_the_read_models_match_the_events(
    server: LiveServer, alice: httpx.Client, worker: httpx.Client
) -> None:
    parent = batch(alice, "t.child", "t.child")
    first = claim(worker, ["t.child"])
    assert first is not None
    call(worker, first, "succeed", {})
    server.restart()
    with server.client("host-1", "worker") as again, server.client("alice") as owner:
        second = claim(again, ["t.child"])
        assert second is not None
        call(again, second, "succeed", {})
        assert get(owner, parent["id"])["status"] == "succeeded"
    assert verification.verify(server.runtime.store) == []


def test_replaying_a_batch_replays_its_children(alice: httpx.Client) -> None:
    parent = batch(alice, "t.child", "t.other")
    response = alice.post(f"/api/v1/jobs/{parent['id']}/replay")
    assert response.status_code == 201
    replay = response.json()
    assert replay["replayed_from"] == parent["id"]
    assert replay["children"]["total"] == 2 and replay["status"] == "running"
    children = children_of(alice, replay["id"])
    assert [(c["type"], c["name"]) for c in children] == [("t.child", "child 0"),
                                                          ("t.other", "child 1")]  # fmt: skip
