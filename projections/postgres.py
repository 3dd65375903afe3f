"""The read models on PostgreSQL: the dialect of their SQL, and an async read pool (psycopg).

projections/ writes its statements once, in SQLite's dialect with `?` placeholders. On
PostgreSQL each statement is taken as written, with psycopg's `%s` placeholders, unless
queries.postgres.sql holds a version of its own under the same name (where the dialects
differ: SQLite's two-argument MAX is PostgreSQL's GREATEST).
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg_pool
from psycopg.rows import tuple_row

from projections import reads, sql

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Mapping, Sequence


@functools.cache
def _own_versions() -> dict[str, str]:
    sqlite = sql.queries()
    return {sqlite[name]: text for name, text in sql.queries("queries.postgres.sql").items()}


@functools.lru_cache(maxsize=2048)  # the list queries are built per filter combination
def dialect(statement: str) -> str:
    """The PostgreSQL form of a statement written for SQLite."""
    statement = _own_versions().get(statement, statement)
    # Comment lines go: a `?` in one is no placeholder (psycopg would count it as one).
    lines = [line for line in statement.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines).replace("%", "%%").replace("?", "%s")


def schema() -> list[str]:
    """The statements that create the read models (run once, by a migration)."""
    return sql.schema("schema.postgres.sql")


class Cursor:
    """A psycopg cursor that takes the statements of projections/ as they are written (a
    `projections.sql.Cursor`), inside the transaction of the connection it belongs to."""

    def __init__(self, raw: psycopg.Cursor[tuple[Any, ...]]) -> None:
        self.raw = raw

    @property
    def connection(self) -> psycopg.Connection[Any]:
        return self.raw.connection

    def execute(self, statement: str, parameters: Sequence[Any] = (), /) -> Cursor:
        # Parameters always (an empty tuple too): psycopg reads `%%` only when it has some.
        self.raw.execute(dialect(statement), tuple(parameters))
        return self

    def executemany(self, statement: str, parameters: Iterable[Sequence[Any]], /) -> None:
        rows = [tuple(row) for row in parameters]
        if rows:
            self.raw.executemany(dialect(statement), rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.raw.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.raw.fetchall()


class _Connection:
    """A pooled connection in autocommit: each statement sees every commit before it."""

    def __init__(self, raw: psycopg.AsyncConnection[tuple[Any, ...]]) -> None:
        self._raw = raw

    @contextlib.asynccontextmanager
    async def execute(
        self, statement: str, parameters: Sequence[Any] = (), /
    ) -> AsyncIterator[psycopg.AsyncCursor[tuple[Any, ...]]]:
        async with self._raw.cursor() as cursor:
            await cursor.execute(dialect(statement), tuple(parameters))
            yield cursor

    async def execute_fetchall(
        self, statement: str, parameters: Sequence[Any] = (), /
    ) -> list[tuple[Any, ...]]:
        async with self.execute(statement, parameters) as cursor:
            return await cursor.fetchall()


class ReadPool:
    """Up to `size` connections to the read models, opened as needed, never blocking the
    event loop. A read that cannot reach the database raises `ReadsUnavailable`."""

    def __init__(self, connect: Mapping[str, Any], size: int = 4, timeout: float = 5.0) -> None:
        self._pool = psycopg_pool.AsyncConnectionPool(
            kwargs={**connect, "autocommit": True, "row_factory": tuple_row},
            min_size=1,
            max_size=size,
            open=False,
            timeout=timeout,
            # A connection the server dropped is found and replaced before it is handed out.
            check=psycopg_pool.AsyncConnectionPool.check_connection,
        )

    async def open(self) -> None:
        await self._pool.open(wait=True)

    async def close(self) -> None:
        await self._pool.close()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[reads.ReadConnection]:
        try:
            async with self._pool.connection() as raw:
                yield _Connection(raw)
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            raise reads.ReadsUnavailable() from exc
