"""The leases table: who holds a running job, until when. Renewals are rows, not events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from projections import documents, reads, sql

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from projections.reads import ReadConnection
    from projections.sql import Cursor


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseRow:
    token: str
    seconds: float
    expires_ms: int


def get(cursor: Cursor, job_id: uuid.UUID) -> LeaseRow | None:
    cursor.execute(sql.query("get_lease"), (documents.text_id(job_id),))
    row = cursor.fetchone()
    if row is None:
        return None
    return LeaseRow(token=str(row[0]), seconds=float(row[1]), expires_ms=int(row[2]))


def renew(cursor: Cursor, job_id: uuid.UUID, token: str, expires_ms: int) -> None:
    """Moves the expiry of the lease `token` forward (never back)."""
    cursor.execute(sql.query("renew_lease"), (expires_ms, documents.text_id(job_id), token))


def every(cursor: Cursor) -> Iterator[tuple[str, str, float, int]]:
    """Every lease as (job id, token, seconds, expiry ms), in job id order, one at a time."""
    cursor.execute(sql.query("all_leases"))
    for job_id, token, seconds, expires_ms in iter(cursor.fetchone, None):
        yield str(job_id), str(token), float(seconds), int(expires_ms)


def renew_all(cursor: Cursor, leases: Iterable[tuple[str, str, float, int]]) -> None:
    """`renew` for each of `leases` (as `every` gives them): a store's copy takes over the
    renewals its events do not hold."""
    rows = [(expires_ms, job_id, token) for job_id, token, _, expires_ms in leases]
    cursor.executemany(sql.query("renew_lease"), rows)


async def expired(conn: ReadConnection, now_ms: int, limit: int) -> list[uuid.UUID]:
    """The jobs whose lease lapsed at `now_ms`, the longest lapsed first."""
    rows = await reads.fetch_all(conn, sql.query("expired_leases"), (now_ms, limit))
    return [uuid.UUID(row[0]) for row in rows]


async def next_expiry(conn: ReadConnection) -> int | None:
    """The earliest expiry (epoch ms) of any lease, or None when no job is leased."""
    row = await reads.fetch_one(conn, sql.query("next_lease_expiry"))
    return None if row is None or row[0] is None else int(row[0])
