"""Job ids: UUIDv7 (RFC 9562), time-ordered, so new jobs land at the right edge of every
B-tree keyed by id instead of at random pages (a random UUIDv4 dirties a page per index)."""

from __future__ import annotations

import os
import time
import uuid

_BATCH = 4096  # ids' worth of randomness per os.urandom call


class JobIds:
    """Makes UUIDv7 ids from OS randomness read in large blocks. Not thread-safe: one per
    writer thread. (A getrandom(2) per id costs little CPU, but releases the GIL, and the
    writer then waits for the event loop to hand it back: a real cost in its hot path.)"""

    def __init__(self) -> None:
        self._pool = b""
        self._next = 0

    def new(self) -> uuid.UUID:
        if self._next >= len(self._pool):
            self._pool, self._next = os.urandom(10 * _BATCH), 0
        random_bits = int.from_bytes(self._pool[self._next : self._next + 10], "big")
        self._next += 10
        milliseconds = time.time_ns() // 1_000_000
        value = (milliseconds & (2**48 - 1)) << 80 | random_bits
        value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
        value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
        return uuid.UUID(int=value)
