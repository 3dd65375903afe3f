"""Validation of request bodies into typed commands; every failure is a 400 naming its fields."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from domain.job import PRIORITIES
from service.edge import api_errors as errors
from service.edge import bodies
from service.jobs.commands import JobSpec

if TYPE_CHECKING:
    from service.settings import Limits

TYPE_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MAX_NAME = 200
MAX_CATEGORY = 64
MAX_REASON = 1000
MAX_IDEMPOTENCY_KEY = 255
_JOB_FIELDS = frozenset(
    {
        "type",
        "payload",
        "name",
        "category",
        "priority",
        "metadata",
        "max_attempts",
        "run_at",
        "children",
    }
)
_PATCH_FIELDS = frozenset({"name", "starred", "metadata"})
_MAX_MS = 253_402_300_799_999  # the end of year 9999
_DIGITS = re.compile(r"[0-9]{1,20}")


class _Problems:
    def __init__(self) -> None:
        self.details: dict[str, str] = {}

    def add(self, field: str, message: str) -> None:
        self.details.setdefault(field, message)

    def raise_if_any(self, message: str = "The request is invalid.") -> None:
        if self.details:
            first = next(iter(self.details))
            raise errors.InvalidRequest(
                f"{message} {first}: {self.details[first]}", details=self.details
            )


def job_spec(body: Any, limits: Limits, body_bytes: int, *, nested: bool = False) -> JobSpec:
    problems = _Problems()
    if not isinstance(body, dict):
        raise errors.InvalidRequest(
            "The body must be a JSON object.", details={"body": "not an object"}
        )
    for key in body.keys() - _JOB_FIELDS:
        problems.add(key, "unknown field")
    children: tuple[JobSpec, ...] = ()
    if "children" in body:
        if nested:
            problems.add("children", "a child cannot have children")
        else:
            children = _children(problems, body["children"], limits, body_bytes)
    job_type = body.get("type")
    if not isinstance(job_type, str) or not TYPE_PATTERN.fullmatch(job_type):
        problems.add("type", "required; lowercase letters, digits, '.', '_', '-', at most 64")
    name = _optional_text(problems, body, "name", MAX_NAME)
    category = _optional_text(problems, body, "category", MAX_CATEGORY)
    priority = body.get("priority", "normal")
    if priority not in PRIORITIES:
        problems.add("priority", "must be one of low, normal, high")
    payload = body.get("payload")
    _check_size(problems, "payload", payload, limits.field_bytes, body_bytes)
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        problems.add("metadata", "must be an object")
    _check_size(problems, "metadata", metadata, limits.field_bytes, body_bytes)
    max_attempts = body.get("max_attempts", 1)
    if isinstance(max_attempts, float) and max_attempts.is_integer():
        max_attempts = int(max_attempts)  # JSON does not tell 3 from 3.0
    if not _is_int(max_attempts) or not 1 <= max_attempts <= 100:
        problems.add("max_attempts", "must be an integer from 1 to 100")
    run_at = None
    if body.get("run_at") is not None:
        run_at = parse_time(body["run_at"])
        if run_at is None:
            problems.add("run_at", "must be an RFC 3339 date-time or Unix epoch milliseconds")
    problems.raise_if_any()
    return JobSpec(
        type=job_type,  # type: ignore[arg-type]
        payload=payload,
        name=name,
        category=category,
        priority=priority,
        metadata=metadata,
        max_attempts=max_attempts,
        run_at=run_at,
        children=children,
    )


def _children(
    problems: _Problems, value: Any, limits: Limits, body_bytes: int
) -> tuple[JobSpec, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= limits.children:
        problems.add("children", f"must be a list of 1 to {limits.children} job bodies")
        return ()
    specs = []
    for index, child in enumerate(value):
        try:
            specs.append(job_spec(child, limits, body_bytes, nested=True))
        except errors.InvalidRequest as exc:
            for field, message in (exc.details or {"body": "invalid"}).items():
                problems.add(f"children[{index}].{field}", message)
    return tuple(specs)


def patch(body: Any, limits: Limits, body_bytes: int) -> dict[str, Any]:
    problems = _Problems()
    if not isinstance(body, dict):
        raise errors.InvalidRequest(
            "The body must be a JSON object.", details={"body": "not an object"}
        )
    for key in body.keys() - _PATCH_FIELDS:
        problems.add(key, "unknown field")
    if not body.keys() & _PATCH_FIELDS:
        problems.add("body", "give at least one of name, starred, metadata")
    _optional_text(problems, body, "name", MAX_NAME)
    if "starred" in body and not isinstance(body["starred"], bool):
        problems.add("starred", "must be true or false")
    if "metadata" in body:
        if not isinstance(body["metadata"], dict):
            problems.add("metadata", "must be an object")
        _check_size(problems, "metadata", body["metadata"], limits.field_bytes, body_bytes)
    problems.raise_if_any()
    return {key: body[key] for key in _PATCH_FIELDS if key in body}


def cancel_reason(body: Any) -> str | None:
    if body is None:
        return None
    problems = _Problems()
    if not isinstance(body, dict):
        raise errors.InvalidRequest(
            "The body must be a JSON object.", details={"body": "not an object"}
        )
    for key in body.keys() - {"reason"}:
        problems.add(key, "unknown field")
    reason = _optional_text(problems, body, "reason", MAX_REASON)
    problems.raise_if_any()
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


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 date-time with a zone, or Unix epoch milliseconds; None if neither."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON does not tell 12 from 12.0
    if _is_int(value):
        if not 0 <= value <= _MAX_MS:
            return None
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        if _DIGITS.fullmatch(value):
            return parse_time(int(value))
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None or "T" not in value.upper():
                return None
            return parsed.astimezone(UTC)
        except (ValueError, OverflowError):  # not a date-time, or outside years 1-9999 in UTC
            return None
    return None


def _optional_text(problems: _Problems, body: dict[str, Any], field: str, limit: int) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        problems.add(field, f"must be a string of 1 to {limit} characters, or null")
        return None
    return value


def _check_size(problems: _Problems, field: str, value: Any, limit: int, body_bytes: int) -> None:
    # Re-encoding changes a value's size by at most 4x (a number like 9e9), so in a body
    # under a quarter of the limit no value can be over it: most bodies skip the encoding.
    if value is None or body_bytes * 4 <= limit:
        return
    if bodies.encoded_size(value) > limit:
        problems.add(field, f"is larger than {limit} bytes as JSON")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
