"""The event index's queries: events after a cursor (the global event id), by job or owner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from projections import reads, sql

if TYPE_CHECKING:
    from projections.reads import ReadConnection


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRow:
    id: int
    type: str
    document: str


def _in(column: str, values: tuple[str, ...]) -> tuple[str, list[Any]]:
    return f" AND {column} IN ({','.join('?' * len(values))})", list(values)


async def job_events(
    conn: ReadConnection,
    job_id: str,
    *,
    after: int,
    limit: int,
    types: tuple[str, ...] = (),
) -> list[EventRow]:
    query = "SELECT id, type, document FROM events WHERE job_id = ? AND id > ?"
    params: list[Any] = [job_id, after]
    if types:
        clause, values = _in("type", types)
        query, params = query + clause, params + values
    query += " ORDER BY id LIMIT ?"
    return await _rows(conn, query, [*params, limit])


async def events_after(
    conn: ReadConnection,
    *,
    owner: str | None,
    after: int,
    limit: int,
    job_ids: tuple[str, ...] = (),
    types: tuple[str, ...] = (),
) -> list[EventRow]:
    """Every event after `after`: an owner's (of jobs not deleted), or all (owner None)."""
    if owner is None:
        query = "SELECT e.id, e.type, e.document FROM events e WHERE e.id > ?"
        params: list[Any] = [after]
    else:
        query = (
            "SELECT e.id, e.type, e.document FROM events e JOIN jobs j ON j.id = e.job_id "
            "WHERE e.owner = ? AND e.id > ?"
        )
        params = [owner, after]
    for column, values in (("e.job_id", job_ids), ("e.type", types)):
        if values:
            clause, extra = _in(column, values)
            query, params = query + clause, params + extra
    query += " ORDER BY e.id LIMIT ?"
    return await _rows(conn, query, [*params, limit])


async def recent_logs(
    conn: ReadConnection, job_id: str, *, up_to: int, limit: int = 100
) -> list[str]:
    """The job's newest `limit` log events with ids up to `up_to`, oldest first."""
    query = (
        "SELECT document FROM events WHERE job_id = ? AND type = 'log' AND id <= ? "
        "ORDER BY id DESC LIMIT ?"
    )
    rows = await reads.fetch_all(conn, query, (job_id, up_to, limit))
    return [row[0] for row in reversed(rows)]


async def job_has_events(conn: ReadConnection, job_id: str) -> bool:
    query = "SELECT 1 FROM events WHERE job_id = ? LIMIT 1"
    return await reads.fetch_one(conn, query, (job_id,)) is not None


async def _rows(conn: ReadConnection, query: str, params: list[Any]) -> list[EventRow]:
    rows = await reads.fetch_all(conn, query, params)
    return [EventRow(id=row[0], type=row[1], document=row[2]) for row in rows]


@dataclass(frozen=True, slots=True, kw_only=True)
class TailRow:
    id: int
    job_id: str
    owner: str
    type: str
    document: str


async def tail(conn: ReadConnection, *, after: int, limit: int) -> list[TailRow]:
    """Every event after `after`, with what the live fan-out filters on."""
    query = "SELECT id, job_id, owner, type, document FROM events WHERE id > ? ORDER BY id LIMIT ?"
    rows = await reads.fetch_all(conn, query, (after, limit))
    return [TailRow(id=r[0], job_id=r[1], owner=r[2], type=r[3], document=r[4]) for r in rows]


async def last_id(conn: ReadConnection) -> int:
    row = await reads.fetch_one(conn, "SELECT COALESCE(MAX(id), 0) FROM events")
    return int(row[0]) if row is not None else 0


async def tracking_position(conn: ReadConnection) -> int:
    """The id of the last event the read models have applied."""
    row = await reads.fetch_one(conn, sql.query("tracking_position"))
    return int(row[0]) if row else 0
