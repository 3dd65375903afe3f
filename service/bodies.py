"""Reading request bodies: media type, size limit, strict JSON. Nothing is written before this."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from service import errors

if TYPE_CHECKING:
    from starlette.requests import Request


async def read_json(request: Request, limit: int, *, optional: bool = False) -> tuple[Any, int]:
    """The body as JSON (None for an absent body when `optional`), and its size in bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise errors.InvalidRequest("Invalid Content-Length header.")
        if int(declared) > limit:
            raise errors.PayloadTooLarge(details={"limit_bytes": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.PayloadTooLarge(details={"limit_bytes": limit})
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if optional:
            return None, 0
        raise errors.InvalidRequest("A JSON request body is required.", details={"body": "missing"})
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise errors.UnsupportedMediaType()
    try:
        value = _DECODER.decode(raw.decode("utf-8"))
        if b"\\ud" in raw or b"\\uD" in raw:
            # "\ud800" alone is valid JSON syntax but no character: it could never be stored.
            json.dumps(value, ensure_ascii=False).encode()
    except (ValueError, RecursionError) as exc:
        raise errors.InvalidRequest(
            "The request body is not valid JSON.", details={"body": str(exc)[:200]}
        ) from None
    return value, len(raw)


def fingerprint(body: Any) -> str:
    """A hash of the body's JSON value, independent of key order and whitespace."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def encoded_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# Built once: json.loads() with any option builds a new decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
