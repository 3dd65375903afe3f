"""The API's time inputs: an RFC 3339 date-time with a zone, or Unix epoch milliseconds, in a
body (`run_at`) or a query parameter (`created_from`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

MAX_MS = 253_402_300_799_999  # the end of year 9999
MESSAGE = "must be an RFC 3339 date-time or Unix epoch milliseconds"
_DIGITS = re.compile(r"[0-9]{1,20}")


def parse(value: Any) -> datetime | None:
    """An RFC 3339 date-time with a zone, or Unix epoch milliseconds; None if neither."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON does not tell 12 from 12.0
    if _is_int(value):
        if not 0 <= value <= MAX_MS:
            return None
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        if _DIGITS.fullmatch(value):
            return parse(int(value))
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None or "T" not in value.upper():
                return None
            return parsed.astimezone(UTC)
        except (ValueError, OverflowError):  # not a date-time, or outside years 1-9999 in UTC
            return None
    return None


def schema(description: str) -> dict[str, Any]:
    return {
        "anyOf": [
            {
                "type": "string",
                "format": "date-time",
                "description": "RFC 3339, with its offset: in UTC, from the start of year 1 to "
                "the end of year 9999 (`0001-01-01T00:00:00+01:00` is before it: 400).",
            },
            {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_MS,
                "description": "Unix epoch milliseconds (up to the end of year 9999).",
            },
        ],
        "description": f"{description} An RFC 3339 date-time or Unix epoch milliseconds.",
    }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
