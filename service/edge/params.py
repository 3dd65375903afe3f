"""Query-string parsing: each invalid value is a 400 that names its parameter."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

from service.contract import jobs as validation
from service.edge import api_errors as errors
from service.edge import bodies

if TYPE_CHECKING:
    from datetime import datetime

    from starlette.datastructures import QueryParams
    from starlette.requests import Request


class Params:
    """A request's query parameters; any not in `allowed` is a 400, so that a misspelt filter
    is reported instead of silently returning everything."""

    def __init__(self, query: QueryParams, allowed: frozenset[str]) -> None:
        self._query = query
        unknown = sorted(set(query.keys()) - allowed)
        if unknown:
            raise errors.InvalidRequest(
                f"Unknown query parameter: {unknown[0]!r}.",
                details=dict.fromkeys(unknown, "unknown parameter"),
            )
        for name, value in query.multi_items():
            if "\x00" in value:  # no PostgreSQL text column or parameter holds one
                raise _invalid(name, bodies.NO_NUL)

    def has(self, name: str) -> bool:
        return name in self._query

    def one(self, name: str) -> str | None:
        values = self._query.getlist(name)
        if not values:
            return None
        if len(values) > 1:
            raise _invalid(name, "given more than once")
        return values[0]

    def many(
        self,
        name: str,
        allowed: tuple[str, ...] | None = None,
        max_length: int = 256,
        pattern: re.Pattern[str] | None = None,
    ) -> tuple[str, ...]:
        """Repeated or comma-separated values, in order, without duplicates; at most
        MAX_VALUES of them (a filter of thousands of values is an attack, not a query)."""
        values: dict[str, None] = {}  # ordered, and a membership test in constant time
        for raw in self._query.getlist(name):
            if not raw.strip(_BLANKS):
                raise _invalid(name, "has an empty value")
            for part in raw.split(","):
                value = part.strip(_BLANKS)
                if not value:  # "a,,b" and a trailing comma are forgiven
                    continue
                if len(value) > max_length:
                    raise _invalid(name, f"has a value longer than {max_length} characters")
                if allowed is not None and value not in allowed:
                    raise _invalid(name, f"must be one of {', '.join(allowed)}")
                if pattern is not None and not pattern.fullmatch(value):
                    raise _invalid(name, f"must match {pattern.pattern}")
                values[value] = None
                if len(values) > MAX_VALUES:
                    raise _invalid(name, f"has more than {MAX_VALUES} values")
        return tuple(values)

    def integer(
        self, name: str, default: int | None, low: int, high: int | None = None
    ) -> int | None:
        raw = self.one(name)
        if raw is None:
            return default
        top = bodies.MAX_INTEGER if high is None else high
        if not _INTEGER.fullmatch(raw.strip(_BLANKS)) or not low <= int(raw) <= top:
            raise _invalid(name, f"must be an integer from {low} to {top}")
        return int(raw)

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        raw = self.one(name)
        if raw is None:
            return default
        if raw not in allowed:
            raise _invalid(name, f"must be one of {', '.join(allowed)}")
        return raw

    def boolean(self, name: str) -> bool | None:
        raw = self.one(name)
        if raw is None:
            return None
        if raw.lower() not in ("true", "false"):
            raise _invalid(name, "must be true or false")
        return raw.lower() == "true"

    def time(self, name: str) -> datetime | None:
        raw = self.one(name)
        if raw is None:
            return None
        parsed = validation.parse_time(raw)
        if parsed is None:
            raise _invalid(name, "must be an RFC 3339 date-time or Unix epoch milliseconds")
        return parsed

    def uuids(self, name: str) -> tuple[str, ...]:
        values = self.many(name)
        try:
            return tuple(str(uuid.UUID(value)) for value in values)
        except ValueError:
            raise _invalid(name, "must be job ids (UUIDs)") from None


MAX_VALUES = 100  # distinct values of one filter
_BLANKS = " \t"  # str.strip() would also eat characters like U+0085 that are real values
_INTEGER = re.compile(r"-?[0-9]{1,20}")  # ASCII digits only: int() also takes "²" and "٣"


def _invalid(name: str, problem: str) -> errors.InvalidRequest:
    return errors.InvalidRequest(
        f"Invalid query parameter {name}: {problem}.", details={name: problem}
    )


def path_job_id(request: Request) -> uuid.UUID:
    """The `{job_id}` of the path; one that is not a UUID answers 404, like an unknown job."""
    try:
        return uuid.UUID(request.path_params["job_id"])
    except ValueError:
        raise errors.NotFound() from None
