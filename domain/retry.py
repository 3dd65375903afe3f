from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from domain.job import Job


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with "equal jitter": half the delay is fixed, half random."""

    base_seconds: float = 1.0
    cap_seconds: float = 300.0

    def delay(self, attempt: int, jitter: float) -> timedelta:
        full = min(self.cap_seconds, self.base_seconds * 2 ** max(attempt - 1, 0))
        return timedelta(seconds=full / 2 + full / 2 * jitter)


def decide_retry(
    job: Job, *, retry: bool, now: datetime, policy: RetryPolicy, jitter: float
) -> datetime | None:
    """When the failed attempt should run again, or None when the job has failed for good.

    `jitter` is a number in [0, 1) chosen by the caller, so this stays deterministic.
    """
    if not retry or job.attempt >= job.max_attempts:
        return None
    return now + policy.delay(job.attempt, jitter)
