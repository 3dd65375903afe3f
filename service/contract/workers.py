"""Validation of the worker routes' bodies (API.md, "Workers"): 400 before anything is written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from domain.job import LOG_LEVELS, PROGRESS_FIELDS
from service.contract.jobs import MAX_NAME, TYPE_PATTERN, _check_size, _is_int, _Problems
from service.edge import api_errors as errors

if TYPE_CHECKING:
    from service.settings import Limits

MAX_TYPES = 100
MAX_LEASE_SECONDS = 3600
MAX_WAIT_SECONDS = 30
MAX_LOG_ENTRIES = 1000
_CLAIM_FIELDS = frozenset({"types", "worker_id", "lease_seconds", "wait_seconds"})
_LOG_FIELDS = frozenset({"level", "message", "data"})
_ERROR_FIELDS = frozenset({"message", "code", "details"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimRequest:
    types: tuple[str, ...]
    worker_id: str
    lease_seconds: float
    wait_seconds: float


def _object(body: Any, *, optional: bool = False) -> dict[str, Any]:
    if body is None and optional:
        return {}
    if not isinstance(body, dict):
        raise errors.InvalidRequest(
            "The body must be a JSON object.", details={"body": "not an object"}
        )
    return body


def _unknown(problems: _Problems, body: dict[str, Any], allowed: frozenset[str]) -> None:
    for key in sorted(body.keys() - allowed):
        problems.add(key, "is not a known field")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def claim(body: Any) -> ClaimRequest:
    body = _object(body)
    problems = _Problems()
    _unknown(problems, body, _CLAIM_FIELDS)
    types = body.get("types")
    if (
        not isinstance(types, list)
        or not 1 <= len(types) <= MAX_TYPES
        or not all(isinstance(t, str) and TYPE_PATTERN.fullmatch(t) for t in types)
    ):
        problems.add("types", f"must be a list of 1 to {MAX_TYPES} job types")
        types = []
    worker_id = body.get("worker_id", "worker")
    if not isinstance(worker_id, str) or not 1 <= len(worker_id) <= MAX_NAME:
        problems.add("worker_id", f"must be a string of 1 to {MAX_NAME} characters")
    lease = body.get("lease_seconds", 30)
    if not _number(lease) or not 1 <= lease <= MAX_LEASE_SECONDS:
        problems.add("lease_seconds", f"must be a number from 1 to {MAX_LEASE_SECONDS}")
    wait = body.get("wait_seconds", 0)
    if not _number(wait) or not 0 <= wait <= MAX_WAIT_SECONDS:
        problems.add("wait_seconds", f"must be a number from 0 to {MAX_WAIT_SECONDS}")
    problems.raise_if_any()
    return ClaimRequest(
        types=tuple(dict.fromkeys(types)),
        worker_id=worker_id,
        lease_seconds=float(lease),
        wait_seconds=float(wait),
    )


def progress(body: Any) -> dict[str, Any]:
    body = _object(body)
    problems = _Problems()
    _unknown(problems, body, frozenset(PROGRESS_FIELDS))
    fields = dict(body)
    for field, value in body.items():
        if value is None or field not in PROGRESS_FIELDS:
            continue
        if isinstance(value, float) and value.is_integer() and field != "percent":
            value = fields[field] = int(value)  # JSON does not tell 3 from 3.0
        if field == "percent" and (not _number(value) or not 0 <= value <= 100):
            problems.add(field, "must be a number from 0 to 100, or null")
        elif field in ("stage", "message") and (
            not isinstance(value, str) or len(value) > 8 * 1024
        ):
            problems.add(field, "must be a string of at most 8192 characters, or null")
        elif field in ("total", "completed", "failed") and (
            not _is_int(value) or not 0 <= value < 2**63
        ):
            problems.add(field, "must be a non-negative integer, or null")
    problems.raise_if_any()
    return fields


def log_entries(body: Any, limits: Limits, body_bytes: int) -> list[tuple[str, str, Any]]:
    body = _object(body)
    problems = _Problems()
    if "entries" in body:
        _unknown(problems, body, frozenset({"entries"}))
        raw = body["entries"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_LOG_ENTRIES:
            problems.add("entries", f"must be a list of 1 to {MAX_LOG_ENTRIES} log entries")
            raw = []
    else:
        raw = [body]
    entries = []
    for index, entry in enumerate(raw):
        where = f"entries[{index}]." if "entries" in body else ""
        if not isinstance(entry, dict):
            problems.add(f"{where}entry", "must be an object")
            continue
        _unknown(problems, entry, _LOG_FIELDS)
        level = entry.get("level", "info")
        level = "warning" if level == "warn" else level
        if level not in LOG_LEVELS:
            problems.add(f"{where}level", f"must be one of {', '.join(LOG_LEVELS)}")
        message = entry.get("message")
        if not isinstance(message, str) or len(message.encode()) > limits.log_message_bytes:
            problems.add(
                f"{where}message", f"must be a string of at most {limits.log_message_bytes} bytes"
            )
        _check_size(problems, f"{where}data", entry.get("data"), limits.field_bytes, body_bytes)
        entries.append((level, message, entry.get("data")))
    problems.raise_if_any()
    return entries  # type: ignore[return-value]


def success(body: Any, limits: Limits, body_bytes: int) -> tuple[Any, str | None]:
    body = _object(body, optional=True)
    problems = _Problems()
    _unknown(problems, body, frozenset({"result", "result_type"}))
    result_type = body.get("result_type")
    if result_type is not None and (
        not isinstance(result_type, str) or not 1 <= len(result_type) <= MAX_NAME
    ):
        problems.add("result_type", f"must be a string of 1 to {MAX_NAME} characters, or null")
    _check_size(problems, "result", body.get("result"), limits.field_bytes, body_bytes)
    problems.raise_if_any()
    return body.get("result"), result_type


def failure(body: Any, limits: Limits, body_bytes: int) -> tuple[dict[str, Any], bool]:
    body = _object(body, optional=True)
    problems = _Problems()
    _unknown(problems, body, frozenset({"error", "retry"}))
    error = body.get("error") or {}
    if not isinstance(error, dict):
        problems.add("error", "must be an object")
        error = {}
    _unknown(problems, error, _ERROR_FIELDS)
    message = error.get("message", "The job failed.")
    if not isinstance(message, str) or len(message.encode()) > limits.log_message_bytes:
        problems.add("error.message", "must be a string")
    code = error.get("code", "error")
    if not isinstance(code, str) or not 1 <= len(code) <= MAX_NAME:
        problems.add("error.code", f"must be a string of 1 to {MAX_NAME} characters")
    _check_size(problems, "error.details", error.get("details"), limits.field_bytes, body_bytes)
    retry = body.get("retry", True)
    if not isinstance(retry, bool):
        problems.add("retry", "must be true or false")
    problems.raise_if_any()
    return {"message": message, "code": code, "details": error.get("details")}, retry
