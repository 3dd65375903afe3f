"""The one translation of the application's and the domain's errors into the API's."""

from __future__ import annotations

import uuid

import pytest

from domain import errors as domain_errors
from service import errors
from service.edge import api_errors

JOB = uuid.UUID(int=1)

CASES = [
    (errors.JobNotFound(JOB), 404, "not_found", "Job not found.", {}),
    (errors.NoActiveJob("alice"), 404, "not_found", "No active job found.", {}),
    (
        errors.IdempotencyKeyReused("k"),
        409,
        "conflict",
        "This Idempotency-Key was used with a different request body.",
        {"Idempotency-Key": "reused with a different body"},
    ),
    (
        errors.IdempotencyKeyOfDeletedJob("k", JOB),
        409,
        "conflict",
        "This Idempotency-Key was used for a job that has been deleted.",
        {},
    ),
    (
        errors.ConcurrentChange(),
        409,
        "conflict",
        "The job was changed concurrently; try again.",
        {},
    ),
    (errors.LeaseLost(JOB), 409, "lease_lost", "The lease is not held.", {}),
    (
        errors.TooManyStreams(7),
        429,
        "rate_limited",
        "At most 7 open streams per user; close one first.",
        {},
    ),
    (
        errors.StoreUnavailable(errors.Fault.DISK_FULL),
        503,
        "unavailable",
        "The store is unavailable (disk full); retry shortly.",
        {"reason": "disk full"},
    ),
]


@pytest.mark.parametrize(
    ("error", "status", "code", "message", "details"),
    CASES,
    ids=[type(case[0]).__name__ for case in CASES],
)
def test_each_application_error_has_its_api_error(error, status, code, message, details):
    translated = api_errors.translate(error)
    assert (translated.status, translated.code, translated.message, translated.details) == (
        status,
        code,
        message,
        details,
    )


def test_every_application_error_is_translated_on_purpose():
    covered = {type(case[0]) for case in CASES}
    assert set(errors.ServiceError.__subclasses__()) == covered


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (domain_errors.JobDeleted("gone"), 404, "not_found"),
        (domain_errors.LeaseMismatch("not yours"), 409, "lease_lost"),
        (
            domain_errors.InvalidTransition(job_id="j", state="succeeded", action="start"),
            409,
            "conflict",
        ),
    ],
    ids=["deleted", "lease-mismatch", "invalid-transition"],
)
def test_domain_errors_are_translated(error, status, code):
    translated = api_errors.translate(error)
    assert (translated.status, translated.code) == (status, code)
