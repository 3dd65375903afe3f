"""Wakes long-polling claimers when something was committed, without polling the store."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.store.writer import Commit


class ClaimSignal:
    """A fresh asyncio.Event per generation: a claimer takes the current one *before* it
    looks for a job, so a commit that lands between its look and its wait still wakes it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, hears_others: Callable[[], bool]) -> None:
        self._loop = loop
        self._event = asyncio.Event()
        self.waiting = 0
        # Whether commits of other processes wake claimers here too (PostgreSQL's LISTEN,
        # while connected); if not, claimers look again every poll interval.
        self.hears_others = hears_others
        self.closed = False

    def current(self) -> asyncio.Event:
        return self._event

    def committed(self, _: Commit) -> None:
        """Writer listener (runs in the writer thread)."""
        if self.waiting:
            try:
                self._loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop has closed
                pass

    def close(self) -> None:
        """The server is shutting down: waiting claimers answer 204 now (a claim they made
        after this would hold a job for a worker whose connection is about to be cut)."""
        self.closed = True
        self._wake()

    def elsewhere(self) -> None:
        """Another process committed (called on the loop)."""
        if self.waiting:
            self._wake()

    def _wake(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()
