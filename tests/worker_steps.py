"""Acting as a worker would, until the worker routes exist: domain commands through the
running app's writer, so the events are recorded and projected exactly as in production."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from domain.retry import RetryPolicy
from tests.support import LiveServer


def _run(server: LiveServer, job_id: str, step: Any) -> None:
    def command(uow: Any) -> None:
        step(uow.get(uuid.UUID(job_id)), uow.now)

    server.runtime.writer.call(command)


def start(server: LiveServer, job_id: str, worker_id: str = "w-1") -> None:
    _run(
        server,
        job_id,
        lambda job, now: job.start(
            worker_id=worker_id,
            lease_token=uuid.uuid4().hex,
            lease_expires_at=now + timedelta(seconds=60),
            now=now,
        ),
    )


def progress(server: LiveServer, job_id: str, **fields: Any) -> None:
    _run(server, job_id, lambda job, now: job.report_progress(fields, now=now))


def log(
    server: LiveServer, job_id: str, message: str, level: str = "info", data: Any = None
) -> None:
    _run(server, job_id, lambda job, now: job.log(level=level, message=message, data=data, now=now))


def succeed(
    server: LiveServer, job_id: str, result: Any = None, result_type: str | None = None
) -> None:
    _run(
        server,
        job_id,
        lambda job, now: job.succeed(result=result, result_type=result_type, now=now),
    )


def fail(server: LiveServer, job_id: str, message: str = "boom", retry: bool = False) -> None:
    _run(
        server,
        job_id,
        lambda job, now: job.fail(
            error={"message": message, "code": "error", "details": None},
            retry_allowed=retry,
            now=now,
            policy=RetryPolicy(),
            jitter=0.5,
        ),
    )


def acknowledge_cancel(server: LiveServer, job_id: str) -> None:
    _run(server, job_id, lambda job, now: job.acknowledge_cancel(now=now))
