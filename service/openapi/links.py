"""The links of the served OpenAPI document: which value of an answer another operation takes.

A created job's `id` is the `{id}` of every route on that job; a claim's job id and lease token
are what the worker's calls on it need. Clients and tools read them (schemathesis walks them in
its stateful tests: create, then cancel, replay, claim, report...). Each link is true of every
answer of its status: the value always fits the target, though the target may still refuse
the call for the job's state (cancelling a finished job is a 409).
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
Paths = dict[str, dict[str, Schema]]

_ON_A_JOB = (
    ("getJob", "Read the job."),
    ("updateJob", "Rename, star or re-tag the job."),
    ("deleteJob", "Delete the job."),
    ("cancelJob", "Cancel the job."),
    ("replayJob", "Run the job again."),
    ("listJobEvents", "Read the job's events."),
)
_ON_A_LEASE = (
    ("heartbeat", "Renew the lease."),
    ("reportProgress", "Report the job's progress."),
    ("appendLogs", "Append log lines to the job."),
    ("succeedJob", "Report the job's success."),
    ("failJob", "Report the job's failure."),
    ("acknowledgeCancel", "Acknowledge a cancel of the job."),
)


def _on_job(pointer: str) -> dict[str, Schema]:
    """Links to every operation on a job, whose id is at `pointer` in the answer."""
    return {
        operation_id[0].upper() + operation_id[1:]: {
            "operationId": operation_id,
            "parameters": {"path.id": f"$response.body#{pointer}"},
            "description": description,
        }
        for operation_id, description in _ON_A_JOB
    }


def _claim_its_type() -> dict[str, Schema]:
    claim = {
        "operationId": "claimJob",
        "requestBody": {"types": ["$response.body#/type"], "wait_seconds": 0},
        "description": "Claim a job of this type (this one, once it is the best due).",
    }
    return {"ClaimJob": claim}


def _on_lease() -> dict[str, Schema]:
    """Links to the worker's calls on the job it claimed, with the lease they need."""
    lease = {
        "path.id": "$response.body#/job/id",
        "header.Job-Lease": "$response.body#/lease/token",
    }
    return {
        operation_id[0].upper() + operation_id[1:]: {
            "operationId": operation_id,
            "parameters": dict(lease),
            "description": description,
        }
        for operation_id, description in _ON_A_LEASE
    }


def links() -> dict[tuple[str, str], dict[str, Schema]]:
    """(operationId, status) → the links of that answer, by name."""
    a_job = _on_job("/id")
    return {
        ("createJob", "201"): a_job | _claim_its_type(),
        ("createJob", "200"): a_job,  # an idempotent replay: the original job
        ("replayJob", "201"): a_job | _claim_its_type(),
        ("updateJob", "200"): a_job,
        ("cancelJob", "200"): a_job,
        ("cancelNewestActiveJob", "200"): _on_job("/job/id"),
        ("claimJob", "200"): _on_job("/job/id") | _on_lease(),
        ("succeedJob", "200"): a_job,
        ("failJob", "200"): a_job,
        ("acknowledgeCancel", "200"): a_job,
    }


def add(paths: Paths) -> Paths:
    """`paths` with each answer's links (new response objects: shared ones stay unchanged)."""
    table = links()
    found: set[tuple[str, str]] = set()
    for item in paths.values():
        for operation in item.values():
            responses = operation.get("responses", {})
            for status, response in responses.items():
                key = (operation.get("operationId", ""), status)
                if key in table:
                    responses[status] = {**response, "links": table[key]}
                    found.add(key)
    missing = sorted(table.keys() - found)
    if missing:
        raise ValueError(f"links from answers that no operation has: {missing}")
    return paths
