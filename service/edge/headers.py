"""Request headers by name, from a dict built once per request.

Starlette's `request.headers.get(name)` scans the whole header list and lowercases each
name on every call; the hot routes ask for four or five headers each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

_KEY = "jobtrail.headers"


def header(request: HTTPConnection, name: bytes) -> str | None:
    """The first value of the header `name` (lower case, as ASGI servers pass names)."""
    scope = request.scope
    found: dict[bytes, bytes] | None = scope.get(_KEY)
    if found is None:
        found = {}
        for key, value in scope["headers"]:
            found.setdefault(key.lower(), value)  # the first one, as Starlette's get()
        scope[_KEY] = found
    value = found.get(name)
    return None if value is None else value.decode("latin-1")
