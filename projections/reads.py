"""What the routes, the live tailer and the reaper need of the read models' async connections:
one small interface, with a pool per database (projections/sqlite.py, projections/postgres.py).

Statements are written in SQLite's dialect with `?` placeholders; the PostgreSQL pool takes
them as they are (projections/postgres.py translates)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


class ReadsUnavailable(Exception):
    """The read models cannot be read now (their database is unreachable)."""


class ReadCursor(Protocol):
    async def fetchone(self) -> Any: ...

    async def fetchall(self) -> Iterable[Any]: ...


class ReadConnection(Protocol):
    """Each statement sees every commit that finished before it began."""

    def execute(
        self, sql: str, parameters: Sequence[Any] = ..., /
    ) -> AbstractAsyncContextManager[ReadCursor]: ...

    async def execute_fetchall(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any:
        """Every row of `sql`: one round trip (aiosqlite's execute, fetch and cursor close
        as separate awaits are three hand-offs to its thread and back)."""
        ...


async def fetch_all(conn: ReadConnection, query: str, params: Sequence[Any] = ()) -> list[Any]:
    """Every row of `query`, in one round trip."""
    return list(await conn.execute_fetchall(query, params))


async def fetch_one(conn: ReadConnection, query: str, params: Sequence[Any] = ()) -> Any:
    """The first row of `query` (ask for one: LIMIT 1 or a key), or None."""
    rows = await fetch_all(conn, query, params)
    return rows[0] if rows else None


class ReadPool(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def connection(self) -> AbstractAsyncContextManager[ReadConnection]: ...
