"""The Workers part of the served OpenAPI document (API.md, "Workers"): paths and schemas."""

from __future__ import annotations

from typing import Any

from service.contract import fields
from service.contract import workers as worker_validation
from service.openapi import builders as openapi
from service.openapi import schemas as s

Schema = dict[str, Any]
LEASE_HEADER: Schema = {
    "name": "Job-Lease",
    "in": "header",
    "required": True,
    "description": "The lease token the claim returned.",
    "schema": {"type": "string", "minLength": 1},
}
_LEASE_LOST = (
    "`lease_lost`: the lease is wrong, expired or revoked (the job was cancelled, deleted, or "
    "claimed again after the lease lapsed); nothing was written. Other conflicts: `conflict`."
)
_RENEWS = (
    "Needs the `Job-Lease` header (missing → 400); renews the lease by its length. A wrong "
    "or expired lease → 409 `lease_lost`. Lease renewals are not events."
)


def paths() -> dict[str, dict[str, Schema]]:
    job = "/api/v1/jobs/{id}"
    return {
        "/api/v1/workers/claim": {"post": _claim()},
        f"{job}/heartbeat": {"post": _renewing("heartbeat", "Renew a lease", None)},
        f"{job}/progress": {
            "post": _renewing("reportProgress", "Report progress", "ProgressReport")
        },
        f"{job}/logs": {"post": _renewing("appendLogs", "Append log lines", "LogLines")},
        f"{job}/succeed": {"post": _final("succeedJob", "Report success", "SuccessReport")},
        f"{job}/fail": {"post": _final("failJob", "Report failure", "FailureReport")},
        f"{job}/cancelled": {"post": _final("acknowledgeCancel", "Acknowledge a cancel", None)},
    }


def _claim() -> Schema:
    return openapi.operation(
        "claimJob",
        "Claim a job",
        scope="worker",
        description=(
            "Starts the best due pending job of the given types (priority high → low, then "
            "oldest first; only jobs whose `run_at` has passed) and leases it to the caller. "
            "Under any concurrency one job is claimed by exactly one worker. With "
            "`wait_seconds`, waits up to that long for a job to become due (woken by new jobs "
            "and retries, not by polling) before answering 204."
        ),
        body=openapi.json_body("ClaimRequest", "What the worker can run."),
        responses={
            "200": openapi.json_response("ClaimResult", "The claimed job and its lease."),
            "204": {"description": "Nothing was due within `wait_seconds`."},
        },
        errors=(400, 413, 415),
    )


def _with_lease(operation: Schema) -> Schema:
    return {**operation, "parameters": [*operation["parameters"], LEASE_HEADER]}


def _renewing(operation_id: str, summary: str, body: str | None) -> Schema:
    return _with_lease(
        openapi.operation(
            operation_id,
            summary,
            scope="worker",
            description=f"{_RENEWS} The answer says whether the job's owner asked it to stop.",
            parameters=("JobId",),
            body=openapi.json_body(body, "What to record.") if body else None,
            responses={"200": openapi.json_response("LeaseState", "The renewed lease.")},
            errors=(400, 404, 409, 413, 415) if body else (400, 404, 409),
            notes={409: _LEASE_LOST},
        )
    )


def _final(operation_id: str, summary: str, body: str | None) -> Schema:
    return _with_lease(
        openapi.operation(
            operation_id,
            summary,
            scope="worker",
            description=(
                "Needs the `Job-Lease` header (missing → 400); ends the attempt and the lease. "
                "`fail` with attempts left and `retry` not false → `retry_scheduled` "
                "(exponential backoff with jitter: the job is pending again with a later "
                "`run_at`), else `failed`. "
                "`cancelled` acknowledges a requested cancel (409 `conflict` if none was asked)."
            ),
            parameters=("JobId",),
            body=openapi.json_body(body, "The outcome.", required=False) if body else None,
            responses={"200": openapi.json_response("Job", "The job after the attempt.")},
            errors=(400, 404, 409, 413, 415) if body else (400, 404, 409),
            notes={409: _LEASE_LOST},
        )
    )


def schemas() -> dict[str, Schema]:
    return {
        "ClaimRequest": fields.schema(worker_validation.CLAIM),
        "ClaimResult": s.obj(
            {
                "job": s.ref("Job"),
                "lease": s.obj(
                    {
                        "token": s.string("Send it as `Job-Lease`."),
                        "expires_at": s.timestamp("When the lease lapses unless renewed."),
                    },
                    required=("token", "expires_at"),
                ),
            },
            required=("job", "lease"),
        ),
        "LeaseState": s.obj(
            {
                "cancel_requested": {"type": "boolean", "description": "Stop and acknowledge."},
                "lease_expires_at": s.nullable(s.timestamp("The renewed expiry.")),
            },
            required=("cancel_requested", "lease_expires_at"),
        ),
        "ProgressReport": fields.schema(worker_validation.PROGRESS),
        "LogLines": {
            "oneOf": [
                fields.schema(worker_validation.LOG_ENTRY),
                fields.schema(worker_validation.LOG_ENTRIES),
            ],
            "description": "One log line, or several as `entries`.",
        },
        "SuccessReport": fields.schema(worker_validation.SUCCESS),
        "FailureReport": fields.schema(worker_validation.FAILURE),
    }
