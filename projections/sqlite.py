"""Read connections to the SQLite read models: a small pool of aiosqlite connections."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import aiosqlite

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
            connection = await aiosqlite.connect(self._path, isolation_level=None)
            await connection.execute("PRAGMA query_only = ON")
            self._all.append(connection)
            self._idle.put_nowait(connection)

    async def close(self) -> None:
        for connection in self._all:
            await connection.close()
        self._all.clear()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[aiosqlite.Connection]:
        connection = await self._idle.get()
        try:
            yield connection
        finally:
            self._idle.put_nowait(connection)
