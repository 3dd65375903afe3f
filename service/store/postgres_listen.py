"""Commits of other instances, heard: PostgreSQL's LISTEN on the channel that every write
transaction NOTIFYs (the library's insert does it; PostgreSQL delivers it at commit, once per
transaction, to every listening session).

Each instance keeps one connection that listens, on its event loop, and calls `on_commit` for
every notification: the live tailer reads what is new and long-polling claimers look again, so
an event written through instance A reaches a stream on instance B, and a job created on A a
claimer waiting on B, without waiting for a poll. Notifications carry nothing: the tailer and
the claimers read what is new from the database, so a notification that is lost or repeated
costs a read, never an event.

When the connection drops (the server restarts, a network fault), `connected` turns false until
it is back; meanwhile the callers poll (service/streams/hub.py's fallback poll, the claimers'
re-check), and the first thing after reconnecting is one `on_commit`, for what was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger("jobtrail.store")

APPLICATION_NAME = "jobtrail-listen"  # how its session shows in pg_stat_activity
# Reconnection: the first retry soon, then backing off to this.
_FIRST_RETRY_SECONDS = 0.1
_LONGEST_RETRY_SECONDS = 5.0
# A connection whose peer has gone without a word (a cable, not a restart) is found dead by
# TCP keepalives after about idle + interval * count seconds (25 s).
_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


class CommitListener:
    """Calls `on_commit` on the event loop whenever any instance commits events."""

    def __init__(
        self, connect: dict[str, Any], channel: str, on_commit: Callable[[], None]
    ) -> None:
        self._connect = {**connect, **_KEEPALIVES, "application_name": APPLICATION_NAME}
        self._channel = channel
        self._on_commit = on_commit
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    @property
    def connected(self) -> bool:
        """True while notifications arrive: commits elsewhere need no polling to be seen."""
        return self._listening.is_set()

    async def start(self) -> None:
        """Starts listening; returns when the first LISTEN is in place, or after its first
        failure (the listener then keeps retrying in the background)."""
        self._task = asyncio.create_task(self._run(), name="commit-listener")
        first = asyncio.ensure_future(self._listening.wait())
        await asyncio.wait({first, self._task}, return_when=asyncio.FIRST_COMPLETED)
        first.cancel()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        retry = _FIRST_RETRY_SECONDS
        while True:
            try:
                await self._listen()
            except psycopg.Error as exc:
                log.warning("not hearing other instances' commits (%s); retrying", exc)
            if self._listening.is_set():  # it had worked: this is a new fault
                self._listening.clear()
                retry = _FIRST_RETRY_SECONDS
            await asyncio.sleep(retry)
            retry = min(retry * 2, _LONGEST_RETRY_SECONDS)

    async def _listen(self) -> None:
        connection = await psycopg.AsyncConnection.connect(autocommit=True, **self._connect)
        async with connection:
            await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self._listening.set()
            self._on_commit()  # what was committed while nobody here listened
            async for _ in connection.notifies():
                self._on_commit()
