"""Leases, retries and the cancel handshake over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from service.settings import Settings
from tests.support import call, claim, make_settings, wait_for
from tests.support import create_for_worker as create

pytestmark = pytest.mark.backends("sqlite", "postgres")


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url=database_url,
        retry_base_seconds=0.4,
        retry_cap_seconds=1.0,
        lease_reaper_interval=0.05,
    )


@pytest.fixture
def worker(server) -> Iterator[httpx.Client]:
    with server.client("host-1", "worker") as client:
        yield client


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def events_of(client: httpx.Client, job_id: str) -> list[dict]:
    response = client.get(f"/api/v1/jobs/{job_id}/events")
    assert response.status_code == 200, response.text
    items: list[dict] = response.json()["items"]
    return items


def test_heartbeat_renews_the_lease(alice: httpx.Client, worker: httpx.Client) -> None:
    create(alice)
    claimed = claim(worker, ["t.a"], lease=30)
    assert claimed is not None
    first = parse(claimed["lease"]["expires_at"])
    answer = call(worker, claimed, "heartbeat")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["cancel_requested"] is False
    assert parse(body["lease_expires_at"]) >= first
    # Renewals are not events: the job's stream holds only created and started.
    job = alice.get(f"/api/v1/jobs/{claimed['job']['id']}").json()
    assert job["version"] == 2


def test_wrong_lease_is_409_lease_lost_and_a_missing_one_400(
    alice: httpx.Client, worker: httpx.Client
) -> None:
    create(alice)
    claimed = claim(worker, ["t.a"])
    assert claimed is not None
    job_id = claimed["job"]["id"]
    wrong = worker.post(f"/api/v1/jobs/{job_id}/heartbeat", headers={"Job-Lease": "nope"})
    assert wrong.status_code == 409
    assert wrong.json()["error"]["code"] == "lease_lost"
    missing = worker.post(f"/api/v1/jobs/{job_id}/progress", json={"percent": 5})
    assert missing.status_code == 400
    assert missing.json()["error"]["details"] == {"Job-Lease": "required"}


def test_progress_and_logs_are_recorded_and_answer_the_lease(
    alice: httpx.Client, worker: httpx.Client
) -> None:
    create(alice)
    claimed = claim(worker, ["t.a"])
    assert claimed is not None
    job_id = claimed["job"]["id"]
    assert call(worker, claimed, "progress", {"percent": 50, "stage": "half"}).status_code == 200
    assert call(worker, claimed, "logs", {"level": "warn", "message": "hm"}).status_code == 200
    many = {"entries": [{"message": "a"}, {"level": "error", "message": "b", "data": {"x": 1}}]}
    assert call(worker, claimed, "logs", many).status_code == 200
    job = alice.get(f"/api/v1/jobs/{job_id}?include=logs").json()
    assert job["progress"]["percent"] == 50 and job["progress"]["stage"] == "half"
    assert [(e["level"], e["message"]) for e in job["logs"]] == [
        ("warning", "hm"), ("info", "a"), ("error", "b")
    ]  # fmt: skip
    bad = call(worker, claimed, "progress", {"percent": 101})
    assert bad.status_code == 400


def test_succeed_ends_the_job_and_the_lease(alice: httpx.Client, worker: httpx.Client) -> None:
    create(alice)
    claimed = claim(worker, ["t.a"])
    assert claimed is not None
    done = call(worker, claimed, "succeed", {"result": {"n": 1}, "result_type": "count"})
    assert done.status_code == 200
    assert done.json()["status"] == "succeeded" and done.json()["result"] == {"n": 1}
    again = call(worker, claimed, "heartbeat")
    assert again.status_code == 409 and again.json()["error"]["code"] == "lease_lost"


def test_expired_lease_is_a_failed_attempt_and_the_late_worker_changes_nothing(
    alice: httpx.Client, worker: httpx.Client, server
) -> None:
    job = create(alice, max_attempts=2)
    late = claim(worker, ["t.a"], lease=1)
    assert late is not None

    def retried() -> bool:
        return alice.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "pending"

    wait_for(retried, timeout=10)
    pending = alice.get(f"/api/v1/jobs/{job['id']}").json()
    assert pending["error"]["code"] == "lease_expired"
    assert pending["attempt"] == 1
    version = pending["version"]
    for action, body in (("progress", {"percent": 1}), ("succeed", {}), ("fail", {})):
        response = call(worker, late, action, body)
        assert response.status_code == 409, action
        assert response.json()["error"]["code"] == "lease_lost"
    assert alice.get(f"/api/v1/jobs/{job['id']}").json()["version"] == version
    # The retry is claimable once its backoff has passed.
    second = claim(worker, ["t.a"], wait=5)
    assert second is not None and second["job"]["attempt"] == 2
    assert call(worker, late, "heartbeat").status_code == 409
    assert call(worker, second, "succeed", {}).status_code == 200


def test_expired_lease_on_the_last_attempt_fails_the_job(
    alice: httpx.Client, worker: httpx.Client
) -> None:
    job = create(alice)
    assert claim(worker, ["t.a"], lease=1) is not None
    final = wait_for(
        lambda: (j := alice.get(f"/api/v1/jobs/{job['id']}").json())["status"] == "failed" and j,
        timeout=10,
    )
    assert final["error"]["code"] == "lease_expired"
    metrics = alice.get("/metrics").text
    assert "jobtrail_leases_expired_total 1.0" in metrics
    assert 'jobtrail_worker_claims_total{outcome="claimed"} 1.0' in metrics


def test_failure_with_attempts_left_is_retried_after_a_backoff(
    alice: httpx.Client, worker: httpx.Client
) -> None:
    job = create(alice, max_attempts=3)
    delays = []
    for attempt in (1, 2):
        claimed = claim(worker, ["t.a"], wait=5)
        assert claimed is not None and claimed["job"]["attempt"] == attempt
        error = {"message": "flaky", "code": "net", "details": {"try": attempt}}
        failed = call(worker, claimed, "fail", {"error": error})
        assert failed.status_code == 200
        body = failed.json()
        assert body["status"] == "pending" and body["error"]["message"] == "flaky"
        delays.append(parse(body["run_at"]) - parse(body["updated_at"]))
    # Equal jitter: base 0.4 s then 0.8 s, each between half and all of it.
    assert timedelta(seconds=0.2) <= delays[0] <= timedelta(seconds=0.4)
    assert timedelta(seconds=0.4) <= delays[1] <= timedelta(seconds=0.8)
    kinds = [e["type"] for e in events_of(alice, job["id"])]
    assert kinds.count("retry_scheduled") == 2
    last = claim(worker, ["t.a"], wait=5)
    assert last is not None and last["job"]["attempt"] == 3
    final = call(worker, last, "fail", {"error": {"message": "gave up"}}).json()
    assert final["status"] == "failed" and final["error"]["message"] == "gave up"


def test_a_non_retryable_failure_fails_at_once(alice: httpx.Client, worker: httpx.Client) -> None:
    create(alice, max_attempts=5)
    claimed = claim(worker, ["t.a"])
    assert claimed is not None
    body = {"error": {"message": "bad input", "code": "invalid"}, "retry": False}
    final = call(worker, claimed, "fail", body).json()
    assert final["status"] == "failed" and final["attempt"] == 1


def test_cancel_reaches_the_worker_which_acknowledges(
    alice: httpx.Client, worker: httpx.Client
) -> None:
    job = create(alice)
    claimed = claim(worker, ["t.a"])
    assert claimed is not None
    assert call(worker, claimed, "heartbeat").json()["cancel_requested"] is False
    assert call(worker, claimed, "cancelled").status_code == 409  # nobody asked yet
    asked = alice.post(f"/api/v1/jobs/{job['id']}/cancel").json()
    assert asked["status"] == "running" and asked["cancel_requested"] is True
    for action, body in (
        ("heartbeat", None),
        ("progress", {"percent": 9}),
        ("logs", {"message": "x"}),
    ):
        answer = call(worker, claimed, action, body)
        assert answer.status_code == 200 and answer.json()["cancel_requested"] is True
    done = call(worker, claimed, "cancelled")
    assert done.status_code == 200 and done.json()["status"] == "cancelled"
    assert call(worker, claimed, "heartbeat").status_code == 409


def test_unacknowledged_cancel_ends_cancelled_when_the_lease_lapses(
    alice: httpx.Client, worker: httpx.Client
) -> None:
    job = create(alice, max_attempts=3)
    claimed = claim(worker, ["t.a"], lease=1)
    assert claimed is not None
    alice.post(f"/api/v1/jobs/{job['id']}/cancel")
    wait_for(
        lambda: alice.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "cancelled", timeout=10
    )
    assert call(worker, claimed, "heartbeat").status_code == 409


def test_delete_revokes_the_lease(alice: httpx.Client, worker: httpx.Client) -> None:
    job = create(alice)
    claimed = claim(worker, ["t.a"])
    assert claimed is not None
    assert alice.delete(f"/api/v1/jobs/{job['id']}").status_code == 204
    for action in ("heartbeat", "succeed"):
        response = call(worker, claimed, action, {} if action == "succeed" else None)
        assert response.status_code == 409 and response.json()["error"]["code"] == "lease_lost"


def test_a_renewed_lease_survives_a_restart(alice: httpx.Client, server) -> None:
    job = create(alice)
    with server.client("host-1", "worker") as worker:
        claimed = claim(worker, ["t.a"], lease=60)
        assert claimed is not None
    server.restart()
    with server.client("host-1", "worker") as worker:
        assert call(worker, claimed, "heartbeat").status_code == 200
        assert call(worker, claimed, "succeed", {}).json()["status"] == "succeeded"
    with server.client("alice") as client:
        assert client.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "succeeded"
