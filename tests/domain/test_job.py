from __future__ import annotations

import copy
from datetime import timedelta
from uuid import uuid4

import pytest

from domain import errors
from domain.job import Job
from domain.states import JobState
from tests.domain import jobs
from tests.domain.jobs import NOW, at

NO_LEASE = (None, None, None)

# Creation.


def test_create_makes_a_pending_job_with_defaults() -> None:
    job_id = uuid4()
    job = Job.create(job_id=job_id, now=NOW, type="video.render", owner="alice")

    assert job.id == job_id
    assert job.status == "pending"
    assert job.state is JobState.PENDING
    assert not job.is_finished
    assert job.attempt == 0
    assert job.max_attempts == 1
    assert job.progress == dict.fromkeys(jobs.PROGRESS_FIELDS)
    assert list(job.progress) == list(jobs.PROGRESS_FIELDS)
    assert job.version == 1
    assert jobs.kinds(job) == ["created"]
    assert job.created_on == job.modified_on == NOW
    assert (job.priority, job.metadata, job.payload, job.starred) == ("normal", {}, None, False)
    assert (job.result, job.result_type, job.error, job.children) == (None, None, None, None)
    assert (job.cancel_requested, job.deleted) == (False, False)
    assert (job.run_at, job.started_at, job.finished_at) == (None, None, None)
    assert jobs.lease_of(job) == NO_LEASE


def test_create_records_the_given_fields() -> None:
    parent_id, original_id = str(uuid4()), str(uuid4())
    job = jobs.new(
        name="Intro video",
        category="export",
        priority="high",
        payload={"script": "Once upon a time"},
        metadata={"project_id": "p-42"},
        max_attempts=3,
        run_at=at(60),
        parent_id=parent_id,
        replayed_from=original_id,
    )

    assert (job.type, job.owner, job.name, job.category) == (
        "video.render",
        "alice",
        "Intro video",
        "export",
    )
    assert (job.priority, job.max_attempts, job.run_at) == ("high", 3, at(60))
    assert job.payload == {"script": "Once upon a time"}
    assert job.metadata == {"project_id": "p-42"}
    assert (job.parent_id, job.replayed_from) == (parent_id, original_id)


def test_create_keeps_idempotency_fields_private() -> None:
    job = jobs.new(idempotency_key="key-1", request_hash="abc")
    created = jobs.event(job, -1)

    assert (created.idempotency_key, created.request_hash) == ("key-1", "abc")
    assert Job.Created.private == {"idempotency_key", "request_hash"}


def test_create_batch_parent_counts_its_children_as_pending() -> None:
    job = jobs.new(batch_size=3)

    assert job.children == {
        "total": 3,
        "pending": 3,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
    }


def test_create_batch_parent_progress_counts_its_children_from_the_start() -> None:
    job = jobs.new(batch_size=3)

    assert job.progress == {
        "percent": 0.0,
        "stage": None,
        "message": None,
        "total": 3,
        "completed": 0,
        "failed": 0,
    }


def test_event_kinds_are_exactly_the_api_event_types() -> None:
    event_classes = [
        value
        for value in vars(Job).values()
        if isinstance(value, type) and issubclass(value, Job.Event | Job.Created)
    ]
    found = [cls.kind for cls in event_classes if cls is not Job.Event]

    # A batch parent's ChildrenProgressed is a `progress` event too: kinds may be shared.
    assert set(found) == set(jobs.EVENT_TYPES)


# Commands: their events and the state they leave.


def test_start_runs_the_job_under_a_lease() -> None:
    job = jobs.new()
    job.start(
        worker_id="host-1", lease_token="lease-1", lease_expires_at=jobs.LEASE_ENDS, now=at(1)
    )

    assert jobs.kinds(job) == ["created", "started"]
    assert job.state is JobState.RUNNING
    assert job.attempt == 1
    assert jobs.lease_of(job) == ("host-1", "lease-1", jobs.LEASE_ENDS)
    assert job.started_at == job.modified_on == at(1)
    assert job.version == 2


def test_start_refuses_a_job_scheduled_in_the_future() -> None:
    job = jobs.new(run_at=at(60))

    with pytest.raises(errors.InvalidTransition):
        jobs.start(job, now=at(59))

    jobs.start(job, now=at(60))
    assert job.state is JobState.RUNNING
    assert job.run_at is None


def test_report_progress_merges_fields() -> None:
    job = jobs.running()
    job.report_progress({"percent": 10.0, "stage": "download"}, now=at(1))
    job.report_progress({"percent": 75.5, "message": "Rendering video…"}, now=at(2))

    assert jobs.kinds(job) == ["created", "started", "progress", "progress"]
    assert jobs.event(job, -1).progress == {"percent": 75.5, "message": "Rendering video…"}
    assert job.progress == {
        "percent": 75.5,
        "stage": "download",
        "message": "Rendering video…",
        "total": None,
        "completed": None,
        "failed": None,
    }


def test_log_records_an_event_and_changes_no_field() -> None:
    job = jobs.running()
    before = copy.deepcopy(jobs.state_of(job))
    job.log(level="info", message="Searching for footage…", data={"clips": 3}, now=at(1))

    assert jobs.kinds(job) == ["created", "started", "log"]
    logged = jobs.event(job, -1)
    assert (logged.level, logged.message, logged.data) == (
        "info",
        "Searching for footage…",
        {"clips": 3},
    )
    after = jobs.state_of(job)
    assert after.pop("_version") == 3
    assert after.pop("_modified_on") == at(1)
    assert after == {k: v for k, v in before.items() if k not in {"_version", "_modified_on"}}


def test_succeed_finishes_the_job_and_releases_the_lease() -> None:
    job = jobs.running()
    job.succeed(result={"url": "s3://out.mp4"}, result_type="video", now=at(5))

    assert jobs.kinds(job) == ["created", "started", "succeeded"]
    assert job.state is JobState.SUCCEEDED
    assert job.is_finished
    assert (job.result, job.result_type) == ({"url": "s3://out.mp4"}, "video")
    assert job.finished_at == at(5)
    assert jobs.lease_of(job) == NO_LEASE


def test_fail_without_attempts_left_fails_the_job() -> None:
    job = jobs.running(max_attempts=1)
    jobs.fail(job, now=at(5))

    assert jobs.kinds(job) == ["created", "started", "failed"]
    assert job.state is JobState.FAILED
    assert job.error == jobs.ERROR
    assert job.finished_at == at(5)
    assert jobs.lease_of(job) == NO_LEASE


def test_fail_with_retry_refused_fails_the_job() -> None:
    job = jobs.running(max_attempts=3)
    jobs.fail(job, retry_allowed=False)

    assert jobs.kinds(job)[-1] == "failed"
    assert job.state is JobState.FAILED


def test_fail_with_attempts_left_schedules_a_retry() -> None:
    job = jobs.running(max_attempts=3)
    jobs.fail(job, now=at(5))

    assert jobs.kinds(job) == ["created", "started", "retry_scheduled"]
    assert job.state is JobState.PENDING
    assert not job.is_finished
    assert job.run_at == at(5) + jobs.POLICY.delay(1, 0.5)
    assert jobs.event(job, -1).run_at == job.run_at
    assert job.error == jobs.ERROR
    assert job.attempt == 1
    assert job.finished_at is None
    assert jobs.lease_of(job) == NO_LEASE


def test_retried_job_runs_again_once_due_then_fails_for_good() -> None:
    job = jobs.running(max_attempts=2)
    jobs.fail(job)
    assert job.run_at is not None
    due = job.run_at

    with pytest.raises(errors.InvalidTransition):
        jobs.start(job, now=due - timedelta(microseconds=1))
    jobs.start(job, now=due, token="lease-2")
    assert (job.attempt, job.lease_token) == (2, "lease-2")
    jobs.fail(job, now=due)

    assert jobs.kinds(job) == ["created", "started", "retry_scheduled", "started", "failed"]
    assert job.state is JobState.FAILED


def test_cancel_of_pending_job_cancels_at_once() -> None:
    job = jobs.new()
    job.cancel(reason="not needed", now=at(1))

    assert jobs.kinds(job) == ["created", "cancelled"]
    assert jobs.event(job, -1).reason == "not needed"
    assert job.state is JobState.CANCELLED
    assert job.finished_at == at(1)


def test_cancel_of_running_job_requests_cancel_once() -> None:
    job = jobs.running()
    job.cancel(reason="not needed", now=at(1))
    job.cancel(reason="really", now=at(2))

    assert jobs.kinds(job) == ["created", "started", "cancel_requested"]
    assert jobs.event(job, -1).reason == "not needed"
    assert job.state is JobState.RUNNING
    assert job.cancel_requested
    assert job.lease_token == "lease-1"  # the worker keeps its lease until it stops


def test_acknowledge_cancel_cancels_the_job() -> None:
    job = jobs.in_situation("cancel_requested")
    job.acknowledge_cancel(now=at(1))

    assert jobs.kinds(job) == ["created", "started", "cancel_requested", "cancelled"]
    assert job.state is JobState.CANCELLED
    assert job.finished_at == at(1)
    assert jobs.lease_of(job) == NO_LEASE


@pytest.mark.parametrize("situation", ["pending", "running", "succeeded", "failed", "cancelled"])
def test_update_changes_name_starred_and_metadata_in_any_state(situation: str) -> None:
    job = jobs.in_situation(situation)
    status = job.status
    job.update({"name": "Outro", "starred": True, "metadata": {"k": "v"}}, now=at(1))

    assert jobs.kinds(job)[-1] == "updated"
    assert (job.name, job.starred, job.metadata) == ("Outro", True, {"k": "v"})
    assert job.status == status


def test_update_changes_only_the_given_fields() -> None:
    job = jobs.new(name="Intro", metadata={"k": "v"})
    job.update({"starred": True}, now=NOW)

    assert (job.name, job.starred, job.metadata) == ("Intro", True, {"k": "v"})


def test_delete_of_running_job_cancels_it_first() -> None:
    job = jobs.running()
    job.delete(now=at(1))

    assert jobs.kinds(job) == ["created", "started", "cancelled", "deleted"]
    assert jobs.event(job, -2).reason == "deleted"
    assert job.state is JobState.CANCELLED
    assert job.deleted
    assert jobs.lease_of(job) == NO_LEASE


@pytest.mark.parametrize("situation", ["pending", "succeeded", "failed", "cancelled"])
def test_delete_of_job_not_running_only_deletes(situation: str) -> None:
    job = jobs.in_situation(situation)
    status, before = job.status, jobs.kinds(job)
    job.delete(now=at(1))

    assert jobs.kinds(job) == [*before, "deleted"]
    assert job.status == status
    assert job.deleted


def test_each_event_carries_the_given_now() -> None:
    job = jobs.new(max_attempts=2)
    jobs.start(job, now=at(1))
    job.report_progress({"percent": 1.0}, now=at(2))
    job.log(level="info", message="m", data=None, now=at(3))
    jobs.fail(job, now=at(4))
    job.update({"starred": True}, now=at(5))
    job.cancel(reason=None, now=at(6))
    job.delete(now=at(7))

    assert [e.timestamp for e in job.pending_events] == [NOW, *map(at, range(1, 8))]
