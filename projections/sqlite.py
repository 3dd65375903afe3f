"""Read connections to the SQLite read models: a small pool of aiosqlite connections."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from typing import TYPE_CHECKING

import aiosqlite
import anyio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


class ReadPool:
    """`size` read-only connections, each with its own thread; WAL lets them read while the
    writer commits, and each statement sees every commit that finished before it began."""

    def __init__(self, path: Path, size: int = 4) -> None:
        self._path = path
        self._size = size
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all: list[aiosqlite.Connection] = []

    async def open(self) -> None:
        for _ in range(self._size):
            self._idle.put_nowait(await self._connect())

    async def _connect(self) -> aiosqlite.Connection:
        connection = await aiosqlite.connect(self._path, isolation_level=None)
        await connection.execute("PRAGMA query_only = ON")
        self._all.append(connection)
        return connection

    async def close(self) -> None:
        for connection in self._all:
            await connection.close()
        self._all.clear()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[aiosqlite.Connection]:
        connection = await self._idle.get()
        try:
            yield connection
        except (asyncio.CancelledError, sqlite3.Error):
            # A read cut short (a client gone, a failed statement) can leave its statement
            # open, and the connection would go on reading that old snapshot: replace it.
            with anyio.CancelScope(shield=True):
                connection = await self._replace(connection)
            raise
        finally:
            self._idle.put_nowait(connection)

    async def _replace(self, connection: aiosqlite.Connection) -> aiosqlite.Connection:
        self._all.remove(connection)
        await connection.close()
        return await self._connect()
