"""Job ids: UUIDv7 (RFC 9562), time-ordered, so new jobs land at the right edge of every
B-tree keyed by id instead of at random pages (a random UUIDv4 dirties a page per index)."""

from __future__ import annotations

import secrets
import time
import uuid


def new_job_id() -> uuid.UUID:
    milliseconds = time.time_ns() // 1_000_000
    value = (milliseconds & (2**48 - 1)) << 80 | secrets.randbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)
