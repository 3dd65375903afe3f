"""The jobs routes' request bodies as field tables, and their validation into typed commands;
every failure is a 400 naming its fields. The OpenAPI schemas are written from the same tables."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from domain.job import PRIORITIES
from service.contract import fields, timestamps
from service.edge import api_errors as errors
from service.jobs.commands import JobSpec

if TYPE_CHECKING:
    from service.settings import Limits

TYPE_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MAX_NAME = 200
MAX_CATEGORY = 64
MAX_REASON = 1000
MAX_IDEMPOTENCY_KEY = 255
MAX_ATTEMPTS = 100

# A job's display name, at creation and in a PATCH.
NAME = fields.Field(
    name="name", kind="string", nullable=True, min=1, max=MAX_NAME, description="A display name."
)
# The job's creatable fields, in the order they are checked (a 400's message names the first
# bad one). commands.JobSpec has exactly these fields, with these defaults.
JOB_FIELDS = (
    fields.Field(
        name="type",
        kind="string",
        required=True,
        pattern=TYPE_PATTERN,
        message="required; lowercase letters, digits, '.', '_', '-', at most 64",
        description="Required. Workers claim jobs by type.",
        examples=("video.render",),
    ),
    NAME,
    fields.Field(
        name="category",
        kind="string",
        nullable=True,
        min=1,
        max=MAX_CATEGORY,
        description="A free-form grouping.",
    ),
    fields.Field(
        name="priority",
        kind="enum",
        values=PRIORITIES,
        default="normal",
        description="Claim order.",
    ),
    fields.Field(name="payload", kind="any", size_limited=True, description="The job's input."),
    fields.Field(
        name="metadata",
        kind="object",
        nullable=True,
        size_limited=True,
        description="Free-form client data; null means {}.",
    ),
    fields.Field(
        name="max_attempts",
        kind="integer",
        min=1,
        max=MAX_ATTEMPTS,
        default=1,
        description="Attempts allowed in all.",
    ),
    fields.Field(
        name="run_at",
        kind="time",
        nullable=True,
        description="The job is not claimed before this time.",
    ),
)
JOB_CHILD = fields.Shape(
    fields=(
        fields.Field(name="children", kind="forbidden", message="a child cannot have children"),
        *JOB_FIELDS,
    ),
    component="JobCreateChild",
    description="A child of a batch: a job body without `children`.",
)
JOB_CREATE = fields.Shape(
    fields=(
        fields.Field(
            name="children",
            kind="list",
            items=JOB_CHILD,
            min=1,
            max=lambda limits: limits.children,
            noun="job bodies",
            description="Creates a batch parent of {min} to {max} children (a configurable "
            "limit). Its `progress` counters and `children` aggregate the children's, and it "
            "finishes when they all have: `succeeded` if all succeeded, else `failed`, or "
            "`cancelled` when cancelled.",
        ),
        *JOB_FIELDS,
    ),
    description="A new job. Unknown fields → 400 naming them.",
)
JOB_PATCH = fields.Shape(
    fields=(
        NAME,
        fields.Field(name="starred", kind="boolean"),
        fields.Field(
            name="metadata",
            kind="object",
            size_limited=True,
            description="Replaces the metadata.",
        ),
    ),
    at_least_one=True,
    description="At least one field; unknown fields → 400 naming them.",
)
CANCEL = fields.Shape(
    fields=(
        fields.Field(
            name="reason",
            kind="string",
            nullable=True,
            min=1,
            max=MAX_REASON,
            description="Why; recorded in the cancel event.",
        ),
    ),
    description="Optional. Unknown fields → 400.",
)


def job_spec(body: Any, limits: Limits, body_bytes: int, *, nested: bool = False) -> JobSpec:
    values = fields.parse(JOB_CHILD if nested else JOB_CREATE, body, limits, body_bytes)
    children = tuple(JobSpec(**child) for child in values.pop("children", ()))
    return JobSpec(**values, children=children)


def patch(body: Any, limits: Limits, body_bytes: int) -> dict[str, Any]:
    return fields.parse(JOB_PATCH, body, limits, body_bytes)


def cancel_reason(body: Any) -> str | None:
    if body is None:
        return None
    reason: str | None = fields.parse(CANCEL, body).get("reason")
    return reason


def idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not value or len(value) > MAX_IDEMPOTENCY_KEY:
        raise errors.InvalidRequest(
            "Invalid Idempotency-Key header.",
            details={"Idempotency-Key": f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters"},
        )
    return value


# Also the query parameters' time format (service/edge/params.py).
parse_time = timestamps.parse
