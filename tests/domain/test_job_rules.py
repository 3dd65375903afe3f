from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from domain import errors, retry
from domain.job import Job
from tests.domain import jobs
from tests.domain.jobs import NOW

COMMANDS: dict[str, Callable[[Job], None]] = {
    "start": lambda job: jobs.start(job, token="lease-2"),
    "report_progress": lambda job: job.report_progress({"percent": 1.0}, now=NOW),
    "log": lambda job: job.log(level="info", message="hi", data=None, now=NOW),
    "succeed": lambda job: job.succeed(result=1, result_type="int", now=NOW),
    "fail": lambda job: jobs.fail(job),
    "cancel": lambda job: job.cancel(reason=None, now=NOW),
    "acknowledge_cancel": lambda job: job.acknowledge_cancel(now=NOW),
    "update": lambda job: job.update({"name": "x"}, now=NOW),
    "delete": lambda job: job.delete(now=NOW),
    "check_lease": lambda job: job.check_lease("lease-1", NOW),
}
WORK = ("report_progress", "log", "succeed", "fail")  # only a running job does these
WAYS_OUT = ("start", *WORK, "cancel", "acknowledge_cancel")
TERMINAL = ("succeeded", "failed", "cancelled")

REFUSED = [
    *[("pending", name, errors.InvalidTransition) for name in WORK],
    # Its run_at (NOW + backoff) is still in the future.
    *[("retry_scheduled", name, errors.InvalidTransition) for name in ("start", *WORK)],
    ("running", "start", errors.InvalidTransition),
    ("cancel_requested", "start", errors.InvalidTransition),
    *[
        (state, name, errors.InvalidTransition)
        for state in TERMINAL
        for name in WAYS_OUT
        if (state, name) != ("cancelled", "cancel")  # cancelling again is harmless
    ],
    ("running", "acknowledge_cancel", errors.InvalidTransition),  # nobody asked it to stop
    ("pending", "acknowledge_cancel", errors.InvalidTransition),
    *[("deleted", name, errors.JobDeleted) for name in COMMANDS],
]


@pytest.mark.parametrize(
    ("situation", "command", "error"),
    [pytest.param(*case, id=f"{case[1]}-on-{case[0]}") for case in REFUSED],
)
def test_refused_command_raises_and_changes_nothing(
    situation: str, command: str, error: type[errors.DomainError]
) -> None:
    job = jobs.in_situation(situation)
    before = copy.deepcopy(jobs.state_of(job))
    events_before = list(job.pending_events)

    with pytest.raises(error) as caught:
        COMMANDS[command](job)

    assert caught.value.job_id == str(job.id)
    assert job.pending_events == events_before
    assert jobs.state_of(job) == before


@pytest.mark.parametrize("name", WORK)
def test_work_is_refused_unless_running(name: str) -> None:
    job = jobs.new()
    with pytest.raises(errors.InvalidTransition) as caught:
        COMMANDS[name](job)
    assert caught.value.state == "pending"


@pytest.mark.parametrize("terminal", TERMINAL)
def test_terminal_job_has_no_way_out(terminal: str) -> None:
    job = jobs.in_situation(terminal)
    for name in WAYS_OUT:
        if (terminal, name) == ("cancelled", "cancel"):
            continue
        with pytest.raises(errors.InvalidTransition):
            COMMANDS[name](job)
    assert job.status == terminal


def test_deleted_job_refuses_everything() -> None:
    job = jobs.in_situation("deleted")
    for command in COMMANDS.values():
        with pytest.raises(errors.JobDeleted):
            command(job)


def test_domain_errors_share_one_base() -> None:
    for error in (errors.InvalidTransition, errors.JobDeleted, errors.LeaseMismatch):
        assert issubclass(error, errors.DomainError)


# Leases.


def test_check_lease_accepts_the_current_unexpired_lease() -> None:
    job = jobs.running()
    job.check_lease("lease-1", jobs.LEASE_ENDS - timedelta(microseconds=1))


@pytest.mark.parametrize(
    ("token", "now"),
    [
        pytest.param("lease-2", NOW, id="wrong-token"),
        pytest.param("lease-1", jobs.LEASE_ENDS, id="expires-now"),
        pytest.param("lease-1", jobs.LEASE_ENDS + timedelta(seconds=1), id="expired"),
    ],
)
def test_check_lease_refuses_a_lost_lease(token: str, now: datetime) -> None:
    job = jobs.running()
    with pytest.raises(errors.LeaseMismatch) as caught:
        job.check_lease(token, now)
    assert caught.value.job_id == str(job.id)


@pytest.mark.parametrize("situation", ["pending", "retry_scheduled", *TERMINAL])
def test_check_lease_refuses_a_job_not_running(situation: str) -> None:
    job = jobs.in_situation(situation)
    with pytest.raises(errors.LeaseMismatch):
        job.check_lease("lease-1", NOW)


def test_lease_of_a_previous_attempt_is_refused() -> None:
    job = jobs.running(max_attempts=2)
    jobs.fail(job)
    assert job.run_at is not None
    due = job.run_at
    jobs.start(job, now=due, token="lease-2")

    with pytest.raises(errors.LeaseMismatch):
        job.check_lease("lease-1", due)
    job.check_lease("lease-2", due)


def test_fail_after_cancel_request_does_not_retry() -> None:
    job = jobs.in_situation("cancel_requested")
    jobs.fail(job)

    assert "retry_scheduled" not in jobs.kinds(job)
    assert job.is_finished


def test_cancelling_a_cancelled_job_again_changes_nothing() -> None:
    job = jobs.in_situation("cancelled")
    version = job.version
    job.cancel(reason="again", now=NOW)
    assert job.version == version
    assert job.status == "cancelled"


def test_a_new_attempt_starts_with_empty_progress_and_success_clears_the_old_error() -> None:
    job = jobs.in_situation("running")
    job.report_progress({"percent": 40.0}, now=NOW)
    job.fail(
        error={"message": "boom", "code": "x", "details": None},
        retry_allowed=True,
        now=NOW,
        policy=retry.RetryPolicy(base_seconds=0, cap_seconds=0),
        jitter=0.0,
    )
    assert job.status == "pending"
    jobs.start(job, token="lease-2")
    assert job.progress["percent"] is None
    assert job.error is not None
    job.succeed(result=1, result_type=None, now=NOW)
    assert job.error is None


def test_check_lease_uses_the_renewed_expiry_when_given() -> None:
    job = jobs.running()
    later = jobs.LEASE_ENDS + timedelta(seconds=5)
    job.check_lease("lease-1", later, expires_at=later + timedelta(seconds=1))
    with pytest.raises(errors.LeaseMismatch):
        job.check_lease("lease-1", later, expires_at=later)


def test_expired_lease_is_a_failed_attempt_retried_when_attempts_are_left() -> None:
    job = jobs.running(max_attempts=2)
    job.expire_lease(now=jobs.LEASE_ENDS, policy=jobs.POLICY, jitter=0.0)
    assert job.status == "pending"
    assert job.error is not None and job.error["code"] == "lease_expired"
    assert job.run_at == jobs.LEASE_ENDS + timedelta(seconds=5)


def test_expired_lease_on_the_last_attempt_fails_the_job() -> None:
    job = jobs.running(max_attempts=1)
    job.expire_lease(now=jobs.LEASE_ENDS, policy=jobs.POLICY, jitter=0.0)
    assert job.status == "failed"


def test_expired_lease_after_a_cancel_request_cancels() -> None:
    job = jobs.running(max_attempts=3)
    job.cancel(reason=None, now=NOW)
    job.expire_lease(now=jobs.LEASE_ENDS, policy=jobs.POLICY, jitter=0.0)
    assert job.status == "cancelled"


def test_expire_lease_refuses_a_job_not_running() -> None:
    job = jobs.new()
    with pytest.raises(errors.InvalidTransition):
        job.expire_lease(now=NOW, policy=jobs.POLICY, jitter=0.0)


def batch(size: int = 2) -> Job:
    return jobs.new(batch_size=size)


def test_a_batch_parent_runs_from_its_creation() -> None:
    parent = batch(3)
    assert parent.status == "running"
    assert parent.children == {"total": 3, "pending": 3, "running": 0, "succeeded": 0,
                               "failed": 0, "cancelled": 0}  # fmt: skip


def test_a_batch_succeeds_when_every_child_has() -> None:
    parent = batch(2)
    for _ in range(2):
        parent.record_child(old="pending", new="running", now=NOW)
        parent.record_child(old="running", new="succeeded", now=NOW)
    assert parent.status == "succeeded"
    assert parent.progress["completed"] == 2 and parent.progress["percent"] == 100


def test_a_batch_with_a_failed_child_fails_once_all_have_finished() -> None:
    parent = batch(2)
    parent.record_child(old="pending", new="failed", now=NOW)
    assert parent.status == "running"
    assert parent.progress["failed"] == 1
    parent.record_child(old="pending", new="succeeded", now=NOW)
    assert parent.status == "failed"
    assert parent.error is not None and parent.error["code"] == "children_failed"


def test_a_cancelled_batch_ends_cancelled_when_its_children_have() -> None:
    parent = batch(2)
    parent.cancel(reason=None, now=NOW)
    assert parent.status == "running" and parent.cancel_requested
    parent.record_child(old="pending", new="cancelled", now=NOW)
    parent.record_child(old="pending", new="succeeded", now=NOW)
    assert parent.status == "cancelled"


def test_only_a_batch_parent_follows_children() -> None:
    with pytest.raises(errors.InvalidTransition):
        jobs.new().record_child(old="pending", new="running", now=NOW)
