"""Opaque list cursors: the previous page's last sort key, tied to the query that made it and
to the caller it was made for. Someone else's cursor gets the answer a forged one gets: it says
nothing of whose it was, nor of what its page held."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from service.edge import api_errors as errors
from service.edge import bodies


def encode(key: tuple[int, ...], *, sort: str, order: str, filters: str, owner: str | None) -> str:
    made = {"s": sort, "o": order, "f": filters, "w": _owner_tag(owner), "k": list(key)}
    raw = json.dumps(made, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


# A real cursor is about 150 characters; anything much longer was not made here.
MAX_LENGTH = 1024


def decode(
    cursor: str, *, sort: str, order: str, filters: str, owner: str | None, length: int
) -> tuple[int, ...]:
    """The key of a cursor made for this caller's query (`owner`: None for an admin)."""
    try:
        if len(cursor) > MAX_LENGTH:
            raise ValueError("too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        value: Any = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key, made_by = value["k"], (value["s"], value["o"], value["f"])
        valid = isinstance(key, list) and len(key) == length and all(map(_is_int64, key))
        valid = valid and value["w"] == _owner_tag(owner)
    except (ValueError, TypeError, KeyError, RecursionError):
        valid = False
    if not valid:
        raise errors.InvalidRequest(
            "Invalid cursor.", details={"cursor": "not a cursor from this API"}
        )
    if made_by != (sort, order, filters):
        raise errors.InvalidRequest(
            "The cursor belongs to a different sort, order or filters.",
            details={"cursor": "made by a different query"},
        )
    return tuple(key)


def _owner_tag(owner: str | None) -> str:
    # A digest, not the name: a cursor passed on shows nobody whose it was.
    return "*" if owner is None else hashlib.sha256(owner.encode()).hexdigest()[:16]


def filters_digest(filters: Any) -> str:
    canonical = json.dumps(filters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _is_int64(value: Any) -> bool:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    return is_int and bodies.MIN_INTEGER <= value <= bodies.MAX_INTEGER
