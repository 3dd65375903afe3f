"""The event index's queries: events after a cursor (the global event id), by job or owner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiosqlite


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRow:
    id: int
    document: str


def _in(column: str, values: tuple[str, ...]) -> tuple[str, list[Any]]:
    return f" AND {column} IN ({','.join('?' * len(values))})", list(values)


async def job_events(
    conn: aiosqlite.Connection,
    job_id: str,
    *,
    after: int,
    limit: int,
    types: tuple[str, ...] = (),
) -> list[EventRow]:
    sql = "SELECT id, document FROM events WHERE job_id = ? AND id > ?"
    params: list[Any] = [job_id, after]
    if types:
        clause, values = _in("type", types)
        sql, params = sql + clause, params + values
    sql += " ORDER BY id LIMIT ?"
    return await _rows(conn, sql, [*params, limit])


async def events_after(
    conn: aiosqlite.Connection,
    *,
    owner: str | None,
    after: int,
    limit: int,
    job_ids: tuple[str, ...] = (),
    types: tuple[str, ...] = (),
) -> list[EventRow]:
    """Every event after `after`: an owner's (of jobs not deleted), or all (owner None)."""
    if owner is None:
        sql = "SELECT e.id, e.document FROM events e WHERE e.id > ?"
        params: list[Any] = [after]
    else:
        sql = (
            "SELECT e.id, e.document FROM events e JOIN jobs j ON j.id = e.job_id "
            "WHERE e.owner = ? AND e.id > ?"
        )
        params = [owner, after]
    for column, values in (("e.job_id", job_ids), ("e.type", types)):
        if values:
            clause, extra = _in(column, values)
            sql, params = sql + clause, params + extra
    sql += " ORDER BY e.id LIMIT ?"
    return await _rows(conn, sql, [*params, limit])


async def recent_logs(
    conn: aiosqlite.Connection, job_id: str, *, up_to: int, limit: int = 100
) -> list[str]:
    """The job's newest `limit` log events with ids up to `up_to`, oldest first."""
    sql = (
        "SELECT document FROM events WHERE job_id = ? AND type = 'log' AND id <= ? "
        "ORDER BY id DESC LIMIT ?"
    )
    async with conn.execute(sql, (job_id, up_to, limit)) as cursor:
        rows = await cursor.fetchall()
    return [row[0] for row in reversed(list(rows))]


async def job_has_events(conn: aiosqlite.Connection, job_id: str) -> bool:
    async with conn.execute("SELECT 1 FROM events WHERE job_id = ? LIMIT 1", (job_id,)) as c:
        return await c.fetchone() is not None


async def _rows(conn: aiosqlite.Connection, sql: str, params: list[Any]) -> list[EventRow]:
    async with conn.execute(sql, params) as cursor:
        rows = await cursor.fetchall()
    return [EventRow(id=row[0], document=row[1]) for row in rows]
