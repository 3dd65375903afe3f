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


class ReadPool(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def connection(self) -> AbstractAsyncContextManager[ReadConnection]: ...
