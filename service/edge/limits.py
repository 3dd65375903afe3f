"""Per-owner request rate: a token bucket for each caller (`sub`), in this server process.

Each owner may make `rate` requests per second on average and `burst` at once; one more is
answered 429 `rate_limited` with `Retry-After` (the seconds until a request will be admitted
again), before the request reads its body or touches the store. One runaway client (a loop
without a sleep, a worker pool gone wild) then slows down itself, not everyone else.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

# Owners remembered at most: beyond it, those whose buckets are full again are forgotten
# (a full bucket is what a new owner gets anyway), so memory stays bounded.
_OWNERS = 10_000


class OwnerRate:
    """Token buckets by owner: `admit(owner)` takes a token, or says how long to wait."""

    __slots__ = ("_buckets", "_burst", "_clock", "_rate")

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        # owner → (tokens left, when they were counted)
        self._buckets: dict[str, tuple[float, float]] = {}

    def admit(self, owner: str) -> int | None:
        """None when the owner may make this request now (a token is taken); else the
        whole seconds to wait before the next one will be admitted (at least 1)."""
        now = self._clock()
        tokens, then = self._buckets.get(owner, (self._burst, now))
        tokens = min(self._burst, tokens + (now - then) * self._rate)
        if tokens >= 1:
            self._buckets[owner] = (tokens - 1, now)
            if len(self._buckets) > _OWNERS:
                self._forget_idle(now)
            return None
        self._buckets[owner] = (tokens, now)
        return max(1, math.ceil((1 - tokens) / self._rate))

    def _forget_idle(self, now: float) -> None:
        refill = self._burst / self._rate  # seconds from empty to full
        self._buckets = {
            owner: (tokens, then)
            for owner, (tokens, then) in self._buckets.items()
            if now - then < refill
        }
