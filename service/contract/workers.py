"""Validation of the worker routes' bodies (API.md, "Workers"): 400 before anything is written.
Each body is a field table; the OpenAPI schemas are written from the same tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from domain.job import LOG_LEVELS
from service.contract import fields
from service.contract.jobs import MAX_NAME, TYPE_PATTERN
from service.edge import bodies

if TYPE_CHECKING:
    from service.settings import Limits

MAX_TYPES = 100
MAX_LEASE_SECONDS = 3600
MAX_WAIT_SECONDS = 30
MAX_LOG_ENTRIES = 1000
MAX_PROGRESS_TEXT = 8 * 1024  # characters, in each of a progress report's `stage` and `message`
_UNKNOWN = "is not a known field"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimRequest:
    types: tuple[str, ...]
    worker_id: str
    lease_seconds: float
    wait_seconds: float


CLAIM = fields.Shape(
    fields=(
        fields.Field(
            name="types",
            kind="list",
            required=True,
            items=fields.Field(
                name="type", kind="string", pattern=TYPE_PATTERN, examples=("video.render",)
            ),
            min=1,
            max=MAX_TYPES,
            noun="job types",
            description="The job types this worker runs.",
        ),
        fields.Field(
            name="worker_id",
            kind="string",
            min=1,
            max=MAX_NAME,
            default="worker",
            description="Who claims.",
        ),
        fields.Field(name="lease_seconds", kind="number", min=1, max=MAX_LEASE_SECONDS, default=30),
        fields.Field(name="wait_seconds", kind="number", min=0, max=MAX_WAIT_SECONDS, default=0),
    ),
    unknown=_UNKNOWN,
)
# domain.job.PROGRESS_FIELDS, each nullable; checked in the body's order.
PROGRESS = fields.Shape(
    fields=(
        fields.Field(name="percent", kind="number", nullable=True, min=0, max=100),
        fields.Field(name="stage", kind="string", nullable=True, max=MAX_PROGRESS_TEXT),
        fields.Field(name="message", kind="string", nullable=True, max=MAX_PROGRESS_TEXT),
        *(
            fields.Field(
                name=name,
                kind="integer",
                nullable=True,
                min=0,
                max=bodies.MAX_INTEGER,
                message="must be a non-negative integer, or null",
            )
            for name in ("total", "completed", "failed")
        ),
    ),
    unknown=_UNKNOWN,
    in_body_order=True,
    description="Any of the progress fields.",
)
LOG_ENTRY = fields.Shape(
    fields=(
        fields.Field(
            name="level",
            kind="enum",
            values=LOG_LEVELS,
            aliases=(("warn", "warning"),),
            default="info",
            description="`warn` is taken as `warning`.",
        ),
        fields.Field(
            name="message",
            kind="string",
            required=True,
            max=lambda limits: limits.log_message_bytes,
            unit="bytes",
        ),
        fields.Field(name="data", kind="any", size_limited=True),
    ),
    unknown=_UNKNOWN,
    not_object=("entry", "must be an object"),
    bare_unknown=True,  # `level`, not `entries[0].level`: kept as the 400s have always named it
    description="One log line.",
)
LOG_ENTRIES = fields.Shape(
    fields=(
        fields.Field(
            name="entries",
            kind="list",
            required=True,
            items=LOG_ENTRY,
            min=1,
            max=MAX_LOG_ENTRIES,
            noun="log entries",
        ),
    ),
    unknown=_UNKNOWN,
)
SUCCESS = fields.Shape(
    fields=(
        fields.Field(name="result_type", kind="string", nullable=True, min=1, max=MAX_NAME),
        fields.Field(name="result", kind="any", size_limited=True),
    ),
    unknown=_UNKNOWN,
)
JOB_ERROR = fields.Shape(
    fields=(
        fields.Field(
            name="message",
            kind="string",
            max=lambda limits: limits.log_message_bytes,
            unit="bytes",
            default="The job failed.",
            message="must be a string",
            description="What went wrong.",
        ),
        fields.Field(name="code", kind="string", min=1, max=MAX_NAME, default="error"),
        fields.Field(name="details", kind="any", size_limited=True),
    ),
    unknown=_UNKNOWN,
    bare_unknown=True,  # as LOG_ENTRY's
)
FAILURE = fields.Shape(
    fields=(
        fields.Field(name="error", kind="object", shape=JOB_ERROR),
        fields.Field(
            name="retry",
            kind="boolean",
            default=True,
            description="false: fail at once, attempts left or not.",
        ),
    ),
    unknown=_UNKNOWN,
)


def claim(body: Any) -> ClaimRequest:
    values = fields.parse(CLAIM, body)
    return ClaimRequest(
        types=tuple(dict.fromkeys(values["types"])),
        worker_id=values["worker_id"],
        lease_seconds=float(values["lease_seconds"]),
        wait_seconds=float(values["wait_seconds"]),
    )


def progress(body: Any) -> dict[str, Any]:
    return fields.parse(PROGRESS, body)


def log_entries(body: Any, limits: Limits, body_bytes: int) -> list[tuple[str, str, Any]]:
    if isinstance(body, dict) and "entries" in body:
        entries = fields.parse(LOG_ENTRIES, body, limits, body_bytes)["entries"]
    else:
        entries = [fields.parse(LOG_ENTRY, body, limits, body_bytes)]
    return [(entry["level"], entry["message"], entry.get("data")) for entry in entries]


def success(body: Any, limits: Limits, body_bytes: int) -> tuple[Any, str | None]:
    values = fields.parse(SUCCESS, {} if body is None else body, limits, body_bytes)
    return values.get("result"), values.get("result_type")


def failure(body: Any, limits: Limits, body_bytes: int) -> tuple[dict[str, Any], bool]:
    body = {} if body is None else body
    if isinstance(body, dict):
        # No `error`, or a falsy one (null, false, 0, ""), has always counted as `{}`.
        body = {**body, "error": body.get("error") or {}}
    values = fields.parse(FAILURE, body, limits, body_bytes)
    error = values["error"]
    details = error.get("details")
    return {"message": error["message"], "code": error["code"], "details": details}, values["retry"]
