from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain import retry
from domain.job import Job

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
POLICY = retry.RetryPolicy(base_seconds=2.0, cap_seconds=60.0)
ALMOST_ONE = 0.999  # timedelta keeps microseconds: 1 - 1e-9 would round up to 1


def running_job(*, max_attempts: int, attempts: int = 1) -> Job:
    """A job in its `attempts`-th run, each earlier run failed and retried."""
    job = Job.create(
        job_id=uuid4(), now=NOW, type="video.render", owner="alice", max_attempts=max_attempts
    )
    now = NOW
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            job.fail(
                error={"message": "boom"}, retry_allowed=True, now=now, policy=POLICY, jitter=0
            )
            assert job.run_at is not None
            now = job.run_at
        job.start(
            worker_id="w",
            lease_token=f"t{attempt}",
            lease_expires_at=now + timedelta(seconds=30),
            now=now,
        )
    assert job.attempt == attempts
    return job


def seconds(delay: timedelta) -> float:
    return delay.total_seconds()


def test_default_policy() -> None:
    policy = retry.RetryPolicy()
    assert policy.base_seconds == 1.0
    assert policy.cap_seconds == 300.0


@pytest.mark.parametrize("attempt", range(1, 5))
def test_delay_without_jitter_is_half_the_backoff(attempt: int) -> None:
    full = 2.0 * 2 ** (attempt - 1)
    assert seconds(POLICY.delay(attempt, 0.0)) == full / 2


@pytest.mark.parametrize("attempt", range(1, 5))
def test_delay_with_full_jitter_stays_below_the_backoff(attempt: int) -> None:
    full = 2.0 * 2 ** (attempt - 1)
    delay = seconds(POLICY.delay(attempt, ALMOST_ONE))
    assert full * 0.999 < delay < full


@pytest.mark.parametrize("jitter", [0.0, 0.25, 0.5, ALMOST_ONE])
@pytest.mark.parametrize("attempt", range(1, 9))
def test_delay_stays_within_equal_jitter_bounds(attempt: int, jitter: float) -> None:
    full = min(60.0, 2.0 * 2 ** (attempt - 1))
    assert full / 2 <= seconds(POLICY.delay(attempt, jitter)) < full


@pytest.mark.parametrize("jitter", [0.0, 0.5, ALMOST_ONE])
def test_delay_doubles_per_attempt_below_the_cap(jitter: float) -> None:
    delays = [seconds(POLICY.delay(attempt, jitter)) for attempt in range(1, 5)]
    for previous, following in itertools.pairwise(delays):
        assert following == pytest.approx(2 * previous)


def test_jitter_spreads_the_random_half() -> None:
    low = seconds(POLICY.delay(3, 0.0))
    mid = seconds(POLICY.delay(3, 0.5))
    assert (low, mid) == (4.0, 6.0)


@pytest.mark.parametrize("attempt", [6, 7, 20, 100])
def test_delay_is_capped(attempt: int) -> None:
    assert seconds(POLICY.delay(attempt, 0.0)) == 30.0
    assert 59.9 < seconds(POLICY.delay(attempt, ALMOST_ONE)) < 60.0


def test_attempt_zero_waits_like_the_first() -> None:
    assert POLICY.delay(0, 0.5) == POLICY.delay(1, 0.5)


def test_decide_retry_with_attempts_left_schedules_after_the_delay() -> None:
    job = running_job(max_attempts=3, attempts=2)
    run_at = retry.decide_retry(job, retry=True, now=NOW, policy=POLICY, jitter=0.5)
    assert run_at == NOW + POLICY.delay(2, 0.5)
    assert run_at == NOW + timedelta(seconds=3)


def test_decide_retry_uses_the_jitter_it_is_given() -> None:
    job = running_job(max_attempts=3)
    low = retry.decide_retry(job, retry=True, now=NOW, policy=POLICY, jitter=0.0)
    high = retry.decide_retry(job, retry=True, now=NOW, policy=POLICY, jitter=ALMOST_ONE)
    assert low is not None and high is not None
    assert NOW < low < high < NOW + timedelta(seconds=2)


@pytest.mark.parametrize(("attempts", "max_attempts"), [(1, 1), (2, 2), (3, 3)])
def test_decide_retry_without_attempts_left_is_none(attempts: int, max_attempts: int) -> None:
    job = running_job(max_attempts=max_attempts, attempts=attempts)
    assert retry.decide_retry(job, retry=True, now=NOW, policy=POLICY, jitter=0.5) is None


def test_decide_retry_when_retry_refused_is_none() -> None:
    job = running_job(max_attempts=5)
    assert retry.decide_retry(job, retry=False, now=NOW, policy=POLICY, jitter=0.5) is None
