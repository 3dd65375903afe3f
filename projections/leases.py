"""The leases table: who holds a running job, until when. Renewals are rows, not events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from projections import documents, reads, sql

if TYPE_CHECKING:
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


async def expired(conn: ReadConnection, now_ms: int, limit: int) -> list[uuid.UUID]:
    """The jobs whose lease lapsed at `now_ms`, the longest lapsed first."""
    rows = await reads.fetch_all(conn, sql.query("expired_leases"), (now_ms, limit))
    return [uuid.UUID(row[0]) for row in rows]


async def next_expiry(conn: ReadConnection) -> int | None:
    """The earliest expiry (epoch ms) of any lease, or None when no job is leased."""
    row = await reads.fetch_one(conn, sql.query("next_lease_expiry"))
    return None if row is None or row[0] is None else int(row[0])
