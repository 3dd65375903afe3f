"""The Jobs part of the served OpenAPI document (API.md, "Jobs"): paths."""

from __future__ import annotations

from service.openapi.builders import Paths, Schema, json_body, json_response, operation


def paths() -> Paths:
    job_id = "/api/v1/jobs/{id}"
    created = json_response("Job", "Created: the new job.", "Location")
    return {
        "/api/v1/jobs": {"post": _create_job(), "get": _list_jobs()},
        job_id: {
            "get": operation(
                "getJob",
                "Get a job",
                scope="jobs:read",
                description=(
                    "With `as_of=N`, the job as it was after its event `seq` N, rebuilt from the "
                    "event store (audit time travel): its `version` is N and its `updated_at` "
                    "the time of event N; with `include=logs` too, `logs` holds the newest 100 "
                    "log events with `seq` ≤ N. Unknown, deleted, not-visible or malformed "
                    "id → 404."
                ),
                parameters=("JobId", "Include", "AsOf"),
                responses={"200": json_response("JobWithLogs", "The job.")},
                errors=(400, 404),
                notes={400: "Invalid `include`, or `as_of` beyond the job's `version`."},
            ),
            "patch": operation(
                "updateJob",
                "Rename, star or re-tag a job",
                scope="jobs:write",
                description="Changes the given fields and records an `updated` event.",
                parameters=("JobId",),
                body=json_body("JobPatch", "The fields to change."),
                responses={"200": json_response("Job", "The changed job.")},
                errors=(400, 404, 413, 415),
            ),
            "delete": operation(
                "deleteJob",
                "Delete a job",
                scope="jobs:write",
                description=(
                    "A running job is cancelled first (its worker's lease is revoked). The job "
                    "then answers 404 everywhere and leaves every list. Its events stay in the "
                    "event store, readable by `admin` through the events routes."
                ),
                parameters=("JobId",),
                responses={"204": {"description": "Deleted."}},
                errors=(404,),
            ),
        },
        f"{job_id}/cancel": {"post": _cancel_job()},
        "/api/v1/cancel": {
            "post": operation(
                "cancelNewestActiveJob",
                "Cancel the caller's newest active job",
                scope="jobs:write",
                description=(
                    "Cancels the newest active job the caller owns (also for `admin`), running "
                    "ones before pending ones, as `POST /api/v1/jobs/{id}/cancel` does."
                ),
                responses={"200": json_response("CancelResult", "The cancelled job.")},
                errors=(404,),
                notes={404: "No active job found."},
            )
        },
        f"{job_id}/replay": {
            "post": operation(
                "replayJob",
                "Run a job again",
                scope="jobs:write",
                description=(
                    "Creates a new job with the same `type`, `payload`, `name`, `category`, "
                    "`priority`, `metadata` and `max_attempts`, and `replayed_from` set to the "
                    "original id. Nothing else is copied: no `run_at`, no `starred`, no children."
                ),
                parameters=("JobId",),
                responses={"201": created},
                errors=(404,),
            )
        },
    }


def _create_job() -> Schema:
    replayed = "Idempotent replay: the original job; nothing was created."
    return operation(
        "createJob",
        "Create a job",
        scope="jobs:write",
        description=(
            "Creates a job, or with `children` a batch parent and its children at once. "
            "Read-your-writes: once the 201 is sent, GET and list on the same server show it."
        ),
        parameters=("IdempotencyKey",),
        body=json_body("JobCreate", "The job to create."),
        responses={
            "201": json_response("Job", "Created: the new job.", "Location"),
            "200": json_response("Job", replayed, "Idempotent-Replayed"),
        },
        errors=(400, 409, 413, 415),
        notes={
            400: "Invalid body: unknown fields, bad values and fields over their limit are "
            "named in `details`.",
            409: "The `Idempotency-Key` was used before with a different body, or its job "
            "has since been deleted.",
        },
    )


def _list_jobs() -> Schema:
    return operation(
        "listJobs",
        "List jobs",
        scope="jobs:read",
        description=(
            "The caller's jobs (`admin`: every job), filtered, sorted and paged by `offset` or "
            "by `cursor`. Filters combine with AND; the values of one filter with OR. Paging by "
            "cursor never skips or repeats a job while new jobs are being created."
        ),
        parameters=(
            *("Limit", "Offset", "Cursor", "Sort", "Order"),
            *("TypeFilter", "StatusFilter", "PriorityFilter", "CategoryFilter", "OwnerFilter"),
            *("ParentIdFilter", "FinishedFilter", "StarredFilter", "ResultTypeFilter"),
            *("CreatedFrom", "CreatedTo"),
        ),
        responses={"200": json_response("JobPage", "One page of jobs.")},
        errors=(400,),
        notes={
            400: "An invalid parameter value, or both `offset` and `cursor`, or a cursor "
            "used with another sort, order or filters; `details` names the parameter."
        },
    )


def _cancel_job() -> Schema:
    return operation(
        "cancelJob",
        "Cancel a job",
        scope="jobs:write",
        description=(
            "A pending job becomes `cancelled` at once. A running one gets `cancel_requested: "
            "true`: its worker stops at its next checkpoint and the job becomes `cancelled`; a "
            "worker that never acknowledges loses its lease and the job is cancelled then. "
            "Repeating the call is harmless (200). A batch parent cancels all its unfinished "
            "children."
        ),
        parameters=("JobId",),
        body=json_body("CancelRequest", "Optional: why.", required=False),
        responses={"200": json_response("Job", "The job, cancelled or cancelling.")},
        errors=(400, 404, 409, 413, 415),
        notes={409: "The job is already terminal."},
    )
