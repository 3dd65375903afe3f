"""The Python client against a real server: every route of docs/API.md, typed results, the
API's errors as typed exceptions. One server for the module: each test uses its own job types."""

from __future__ import annotations

import contextlib
import socket
from datetime import UTC, datetime

import httpx
import pytest

from service.sdk import errors
from service.sdk.client import Client
from service.sdk.models import Event, Job

pytestmark = pytest.mark.backends("sqlite", "postgres")


@pytest.fixture(scope="module")
def alice(shared_server):
    with Client(shared_server.url, shared_server.token("alice")) as client:
        yield client


@pytest.fixture(scope="module")
def worker(shared_server):
    with Client(shared_server.url, shared_server.token("w", "worker")) as client:
        yield client


@pytest.fixture(scope="module")
def admin(shared_server):
    with Client(shared_server.url, shared_server.token("root", "admin")) as client:
        yield client


def test_create_get_and_update_give_typed_jobs(alice):
    job = alice.create_job(
        "c.create",
        payload={"n": 1},
        name="first",
        category="tests",
        priority="high",
        metadata={"k": "v"},
        max_attempts=3,
    )
    assert isinstance(job, Job)
    assert (job.type, job.name, job.priority, job.status) == (
        "c.create",
        "first",
        "high",
        "pending",
    )
    assert (job.payload, job.metadata, job.max_attempts, job.version) == (
        {"n": 1},
        {"k": "v"},
        3,
        1,
    )
    assert job.raw["id"] == job.id and job.created_at is not None
    assert alice.get_job(job.id) == job
    renamed = alice.update_job(job.id, name=None, starred=True)
    assert (renamed.name, renamed.starred, renamed.metadata, renamed.version) == (
        None,
        True,
        {"k": "v"},
        2,
    )
    assert alice.get_job(job.id, as_of=1).name == "first"


def test_idempotency_key_returns_the_first_job(alice):
    first = alice.create_job("c.idem", idempotency_key="key-1")
    assert alice.create_job("c.idem", idempotency_key="key-1").id == first.id
    with pytest.raises(errors.ConflictError) as caught:
        alice.create_job("c.idem", payload=2, idempotency_key="key-1")
    assert (caught.value.status, caught.value.code) == (409, "conflict")


def test_a_batch_parent_counts_its_children(alice):
    parent = alice.create_job("c.batch", children=[{"type": "c.child"}, {"type": "c.child"}])
    assert parent.children is not None and parent.children.total == 2
    children = list(alice.iter_jobs(parent_id=parent.id))
    assert {child.parent_id for child in children} == {parent.id} and len(children) == 2


def test_list_filters_and_the_iterator_follows_next_cursor(alice):
    made = [alice.create_job("c.list", priority=("low", "high")[i % 2]) for i in range(5)]
    page = alice.list_jobs(type="c.list", limit=2, order="asc")
    assert [j.id for j in page.items] == [j.id for j in made[:2]]
    assert page.total == 5 and page.next_cursor is not None
    assert [j.id for j in alice.iter_jobs(type="c.list", limit=2, order="asc")] == [
        j.id for j in made
    ]
    high = alice.list_jobs(type=["c.list", "c.none"], priority="high", finished=False)
    assert {j.id for j in high.items} == {made[1].id, made[3].id}
    assert alice.list_jobs(type="c.list", offset=4, limit=10).offset == 4
    assert alice.list_jobs(type="c.list", created_from=made[0].created_at).total == 5
    assert alice.list_jobs(type="c.list", created_to=made[0].created_at).total == 0


def test_worker_calls_and_event_pages(alice, worker):
    job = alice.create_job("c.work", max_attempts=2)
    assert worker.claim(["c.nothing"]) is None
    claim = worker.claim(["c.work"], worker_id="w-1", lease_seconds=60)
    assert claim is not None and claim.job_id == job.id and claim.job.status == "running"
    lease = claim.token
    assert worker.heartbeat(job.id, lease).cancel_requested is False
    worker.progress(job.id, lease, percent=50, stage="half")
    worker.log(job.id, lease, "one", level="warning", data={"x": 1})
    worker.log_entries(job.id, lease, [{"message": "two"}, {"message": "three"}])
    retried = worker.fail(job.id, lease, "boom", code="c_boom", details={"why": 1})
    assert (retried.status, retried.error.code) == ("pending", "c_boom")
    lease = alice_claims_again(worker, job.id)
    done = worker.succeed(job.id, lease, result={"ok": True}, result_type="c")
    assert (done.status, done.result, done.finished) == ("succeeded", {"ok": True}, True)
    with pytest.raises(errors.LeaseLostError) as caught:
        worker.heartbeat(job.id, lease)
    assert caught.value.code == "lease_lost"
    with pytest.raises(errors.ConflictError) as conflict:
        alice.cancel_job(job.id)
    assert (conflict.value.status, conflict.value.code) == (409, "conflict")

    got = alice.get_job(job.id, logs=True)
    assert [e.message for e in got.logs] == ["one", "two", "three"]
    page = alice.list_job_events(job.id, limit=3)
    assert [e.type for e in page.items] == ["created", "started", "progress"]
    assert page.has_more and page.job_status == "succeeded" and not page.finished
    events = list(alice.iter_job_events(job.id))
    assert all(isinstance(e, Event) for e in events) and len(events) == done.version
    assert [e.seq for e in events] == list(range(1, done.version + 1))
    assert events[-1].type == "succeeded" and events[3].level == "warning"
    assert list(alice.iter_events(job_id=job.id, limit=2)) == events
    logs = alice.list_events(job_id=job.id, type="log")
    assert [e.message for e in logs.items] == ["one", "two", "three"]
    assert list(alice.iter_job_events(job.id, after=events[-2].id)) == events[-1:]


def alice_claims_again(worker, job_id):
    claim = worker.claim(["c.work"], wait_seconds=5)  # the retry is due within ~1 s
    assert claim is not None and claim.job_id == job_id
    return claim.token


def test_a_running_job_cancelled_and_acknowledged(alice, worker):
    job = alice.create_job("c.stop")
    claim = worker.claim(["c.stop"])
    asked = alice.cancel_job(job.id, reason="enough")
    assert asked.cancel_requested and asked.status == "running"
    assert worker.progress(job.id, claim.token, percent=1).cancel_requested
    assert worker.cancelled(job.id, claim.token).status == "cancelled"
    assert alice.cancel_job(job.id).status == "cancelled"  # repeating it is harmless


def test_cancel_newest_replay_and_delete(shared_server, admin):
    with Client(shared_server.url, shared_server.token("carol")) as carol:
        older = carol.create_job("c.newest")
        newer = carol.create_job("c.newest")
        assert carol.cancel_newest().id == newer.id
        assert carol.cancel_newest().id == older.id
        with pytest.raises(errors.NotFoundError):
            carol.cancel_newest()
        copy = carol.replay_job(older.id)
        assert (copy.replayed_from, copy.type, copy.status) == (older.id, "c.newest", "pending")
        assert carol.delete_job(copy.id) is None
        with pytest.raises(errors.NotFoundError) as caught:
            carol.get_job(copy.id)
        assert (caught.value.status, caught.value.code) == (404, "not_found")
        assert [e.type for e in admin.iter_job_events(copy.id)][-1] == "deleted"


def test_session_and_operations(alice, admin):
    assert alice.open_session() is None
    assert "jobtrail_token" in alice._http.cookies
    assert alice.close_session() is None
    assert admin.health() is True
    ready = admin.readiness()
    assert ready.ready and ready.projection_lag == 0
    assert "jobtrail" in admin.metrics()
    assert "/api/v1/jobs" in admin.openapi()["paths"]


def test_errors_carry_the_api_code_status_and_details(shared_server, alice):
    with pytest.raises(errors.BadRequestError) as caught:
        alice.create_job("Not A Type")
    assert (caught.value.status, caught.value.code) == (400, "invalid_request")
    assert "type" in caught.value.details
    with (
        Client(shared_server.url, "not-a-token") as stranger,
        pytest.raises(errors.UnauthorizedError) as caught,
    ):
        stranger.list_jobs()
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")
    with pytest.raises(errors.ForbiddenError) as forbidden:
        alice.claim(["c.any"])
    assert forbidden.value.code == "forbidden"
    with pytest.raises(errors.NotFoundError):
        alice.get_job("00000000-0000-0000-0000-000000000000")


@contextlib.contextmanager
def refusing_address():
    """The URL of a port that is bound but never listens: every connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def test_an_unreachable_server_is_a_transport_error():
    with refusing_address() as url, Client(url, "t") as client:
        with pytest.raises(errors.TransportError) as caught:
            client.list_jobs()
    assert caught.value.url == url and isinstance(caught.value.__cause__, httpx.ConnectError)


def test_run_at_as_a_datetime_or_epoch_milliseconds(alice):
    later = datetime(2100, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert alice.create_job("c.later", run_at=later).run_at == later
    assert alice.create_job("c.later", run_at="4102444800000").run_at == datetime(
        2100, 1, 1, tzinfo=UTC
    )
    assert alice.list_jobs(type="c.later", created_from=later).total == 0
