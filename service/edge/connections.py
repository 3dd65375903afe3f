"""The HTTP connection itself, before any route: uvicorn's httptools protocol with the two guards
it lacks (uvicorn has a keep-alive timeout between requests, but none while a request's head
arrives, and no bound on its size).

- A request's line and headers must arrive within `header_seconds` of its first byte (of the
  connection, for the first request): a client that connects and sends nothing, or dribbles
  its headers a byte at a time (slow loris), gets 408 and is disconnected instead of holding
  a connection and its buffers for ever.
- They may take at most 64 KiB (`HEADER_BYTES`): a header flood gets 431 and is disconnected.

Both answers are in the API's error shape, as is the 400 for a request that is not valid
HTTP. The body has its own deadline, kept by the route that reads it (service/edge/bodies.py,
408 as well).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

if TYPE_CHECKING:
    from service.settings import Limits

# nginx allows 32 KiB of headers by default (large_client_header_buffers 4 8k), Node 16 KiB.
HEADER_BYTES = 64 * 1024


def _answer(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message, "details": {}}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


_TOO_SLOW = _answer(408, "Request Timeout", "request_timeout", "The request took too long.")
_MALFORMED = _answer(400, "Bad Request", "invalid_request", "The request is not valid HTTP.")
_TOO_LARGE = _answer(
    431,
    "Request Header Fields Too Large",
    "request_header_fields_too_large",
    "The request's headers are too large.",
)


class ServerConfig(uvicorn.Config):
    """uvicorn's Config, serving through `GuardedHttp` with these limits (a module-level class
    and a plain attribute: `serve --workers N` pickles the config into each process)."""

    def __init__(self, app: Any, *, limits: Limits, **options: Any) -> None:
        super().__init__(app, http=GuardedHttp, **options)
        self.header_seconds = limits.header_seconds


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size bound for a request's head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_seconds: float = getattr(self.config, "header_seconds", 10.0)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._refused = False  # answered here: the rest of what the client sent is ignored

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._head_timer is None:  # a next request on a kept-alive connection
            self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        if not self._refused:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        if not self._refused:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        if not self._refused:  # else no request reaches the app
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        # A request httptools cannot parse (a NUL or a bare CR in a header, a broken request
        # line): in the API's error shape, not uvicorn's plain text.
        self._refuse(_MALFORMED)

    def _arm(self) -> None:
        self._head_timer = self.loop.call_later(self._header_seconds, self._refuse, _TOO_SLOW)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > HEADER_BYTES:
            self._refuse(_TOO_LARGE)

    def _refuse(self, answer: bytes) -> None:
        self._disarm()
        if self._refused:
            return
        self._refused = True
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()
