"""Reading request bodies: media type, size limit, strict JSON. Nothing is written before this."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import math
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect

from projections import documents
from service.edge import api_errors as errors
from service.edge import headers

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import Receive

    from service.settings import Limits


async def read_json(request: Request, limits: Limits, *, optional: bool = False) -> tuple[Any, int]:
    """The body as JSON (None for an absent body when `optional`), and its size in bytes.
    A body that takes longer than `limits.body_seconds` to arrive is a 408."""
    limit = limits.body_bytes
    declared = headers.header(request, b"content-length")
    if declared is not None:
        # ASCII digits only, and few of them: int() also takes "²", and is slow on huge numbers.
        if not (declared.isascii() and declared.isdigit() and len(declared) <= 20):
            raise errors.InvalidRequest("Invalid Content-Length header.")
        if int(declared) > limit:
            raise errors.PayloadTooLarge(details={"limit_bytes": limit})
    receive = request.receive  # straight from the server: Request.stream() adds a generator
    try:
        async with asyncio.timeout(limits.body_seconds):
            raw = await _receive_body(receive, limit)
    except TimeoutError:
        raise errors.RequestTimeout(
            "The request body did not arrive in time.",
            details={"limit_seconds": limits.body_seconds},
        ) from None
    if not raw.strip():
        if optional:
            return None, 0
        raise errors.InvalidRequest("A JSON request body is required.", details={"body": "missing"})
    _check_media_type(headers.header(request, b"content-type") or "")
    try:
        value = _DECODER.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise errors.InvalidRequest(
            "The request body is not valid JSON.", details={"body": str(exc)[:200]}
        ) from None
    if value is None and optional:  # `null` is a JSON value, not the absence of a body
        raise errors.InvalidRequest(
            "The body must be a JSON object.", details={"body": "not an object"}
        )
    check_value(value)
    return value, len(raw)


def _check_media_type(content_type: str) -> None:
    """JSON (`application/json` or `+json`) in UTF-8: the only encoding JSON has (RFC 8259). A
    body declared in another charset would be read as something else than was meant."""
    media_type, _, parameters = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise errors.UnsupportedMediaType()
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            raise errors.UnsupportedMediaType("JSON bodies are UTF-8: no other charset.")


async def _receive_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise errors.PayloadTooLarge(details={"limit_bytes": limit})
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def check_value(value: Any) -> None:
    """Rejects a decoded JSON value that the store and the renderers could not hold.

    JSON's grammar allows more than JSON's data model: 1e400 decodes to infinity, "\\ud800" to
    a lone surrogate that no UTF-8 encoder accepts, 2**100 to an integer no database column
    holds, and nesting deep enough to exhaust a recursive encoder. Each is a 400 naming the
    field (`payload.items[2].x`), found in one walk: linear in the body's size.
    """
    if _holds_only_storable(value):  # the walk every valid body takes: no paths built
        return
    problem = _find_problem(value)
    if problem is not None:
        where, message = problem
        raise errors.InvalidRequest(
            f"Invalid value at {where}: {message}.", details={where: message}
        )


def _holds_only_storable(root: Any) -> bool:
    """Whether `_find_problem` would find nothing: the same rules, by exact type (what the
    JSON decoder makes), without the paths that only a 400 needs."""
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        value, depth = stack.pop()
        kind = type(value)
        if kind is str:
            if not value.isascii() and not is_unicode(value):
                return False
        elif kind is dict or kind is list:
            if depth >= MAX_DEPTH or not _push_items(stack, value, depth + 1):
                return False
        elif not _storable_scalar(value, kind):
            return False  # (or not from the JSON decoder: the full walk names it)
    return True


def _push_items(stack: list[tuple[Any, int]], value: Any, depth: int) -> bool:
    if type(value) is dict:
        for key, item in value.items():
            if not key.isascii() and not is_unicode(key):
                return False
            stack.append((item, depth))
    else:
        stack.extend([(item, depth) for item in value])
    return True


def _storable_scalar(value: Any, kind: type) -> bool:
    if kind is int:
        return bool(MIN_INTEGER <= value <= MAX_INTEGER)
    if kind is float:
        return math.isfinite(value)
    return value is None or kind is bool


def _find_problem(root: Any) -> tuple[str, str] | None:
    # Paths name the fields the way 400 details always have: a top-level key bare, then
    # `.key` and `[index]`. The stack holds (value, path, depth); no recursion.
    top = isinstance(root, dict)
    stack: list[tuple[Any, str, int]] = [(root, "body", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if not value.isascii() and not is_unicode(value):
                return path, _NOT_UNICODE
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not MIN_INTEGER <= value <= MAX_INTEGER:
                return path, f"must be an integer from {MIN_INTEGER} to {MAX_INTEGER}"
        elif isinstance(value, float):
            if not math.isfinite(value):
                return path, "must be a finite number"
        elif depth >= MAX_DEPTH:
            return path, f"nests objects and arrays deeper than {MAX_DEPTH} levels"
        elif isinstance(value, dict):
            for key, item in value.items():
                if not key.isascii() and not is_unicode(key):
                    return path, f"has a key that {_NOT_UNICODE}"
                child = key if top and depth == 0 else f"{path}.{key}"
                stack.append((item, child, depth + 1))
        else:  # a list: json decodes nothing else
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
    return None


def is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def fingerprint(body: Any) -> str:
    """A hash of the body's JSON value, independent of key order and whitespace."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def encoded_size(value: Any) -> int:
    """Bytes of the value's compact UTF-8 JSON (a checked body's value: finite, valid)."""
    return len(documents.encode(value))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A key given twice means two things to two readers (a proxy may take the first, Python
    # the last): refused, as an invalid body.
    value = dict(pairs)
    if len(value) != len(pairs):
        counts = collections.Counter(key for key, _ in pairs)
        twice = next(key for key, count in counts.items() if count > 1)
        raise ValueError(f"the key {twice!r} is given twice in an object")
    return value


# Refused in every text the API stores as text (contract strings, query values, a token's
# sub): no PostgreSQL text column holds U+0000. JSON values (payload, ...) keep it, escaped.
NO_NUL = "must not contain the NUL character (U+0000)"
MAX_DEPTH = 64  # of nested objects and arrays, in any body
MAX_INTEGER = 2**63 - 1  # a signed 64-bit integer: what SQLite and PostgreSQL store
MIN_INTEGER = -(2**63)
_NOT_UNICODE = "is not valid Unicode (a lone surrogate escape such as \\ud800)"

# Built once: json.loads() with any option builds a new decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
