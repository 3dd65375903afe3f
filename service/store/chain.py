"""Tamper evidence: two hash chains through the stored events.

Each event's `job_hash` chains it to the previous event of its job; each event's `log_hash`
chains it to the previous event of the whole log. Both are written in the transaction that
stores the event, beside it (keyed by its event id), by the store's backend; `jobtrail audit
verify` recomputes them. What is hashed is the stored event itself, byte for byte as the
store holds it (job id, version, topic, state) and its event id: an edit, a deletion, a
reordering or an insertion outside jobtrail changes what a hash covers, or breaks a link.

The chains have no secret: whoever can rewrite the file can recompute every hash after their
edit. Record the log's head hash elsewhere (`audit verify` prints it) to catch that too.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from typing import NamedTuple

GENESIS = bytes(32)
_sha256 = hashlib.sha256  # the "previous hash" of a job's first event and of the log's
_NUMBERS = struct.Struct(">QQIII")


def job_hash(
    previous: bytes, event_id: int, job_id: str, version: int, topic: str, state: bytes
) -> bytes:
    """The hash of a stored event chained to its job's previous one (`previous`).

    Canonical bytes: the previous hash, then the numbers and the lengths of the texts in fixed
    width (so no two different events have the same bytes), then the texts and the state.
    """
    job = job_id.encode()
    kind = _encoded(topic)
    head = _NUMBERS.pack(event_id, version, len(job), len(kind), len(state))
    return _sha256(previous + head + job + kind + state).digest()


def log_hash(previous: bytes, job_hash: bytes) -> bytes:
    """The log chain's link: the previous event's `log_hash` and this event's `job_hash`
    (which covers the event id, so the order of the log is covered too)."""
    return _sha256(previous + job_hash).digest()


@functools.lru_cache(maxsize=64)  # a topic per event class
def _encoded(topic: str) -> bytes:
    return topic.encode()


class Link(NamedTuple):
    """A stored event as the chains see it, with the hashes stored beside it (None: absent;
    `job_id` None: a hash stored for an event id that holds no event). A tuple: the audit
    makes millions of them."""

    id: int
    job_id: str | None
    version: int
    job_hash: bytes | None
    log_hash: bytes | None
    topic: str = ""
    state: bytes = b""

    def expected_job_hash(self, previous: bytes) -> bytes:
        assert self.job_id is not None
        return job_hash(previous, self.id, self.job_id, self.version, self.topic, self.state)
