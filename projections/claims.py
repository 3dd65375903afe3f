"""What a claimer may take: pending jobs of a type whose `run_at` has passed, in claim order."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from projections import reads, sql

if TYPE_CHECKING:
    from projections.reads import ReadConnection
    from projections.sql import Cursor


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    job_id: uuid.UUID
    priority: int  # the rank: higher is claimed first
    created_at: int
    created_seq: int

    @property
    def order(self) -> tuple[int, int, int]:
        """Claim order across types: priority high to low, then oldest first."""
        return (-self.priority, self.created_at, self.created_seq)


def candidates(cursor: Cursor, job_type: str, now_ms: int, limit: int) -> list[Candidate]:
    """The first `limit` claimable jobs of one type, in claim order (one index walk)."""
    cursor.execute(sql.query("claim_candidates"), (job_type, now_ms, limit))
    return [
        Candidate(
            job_id=uuid.UUID(row[0]),
            priority=int(row[1]),
            created_at=int(row[2]),
            created_seq=int(row[3]),
        )
        for row in cursor.fetchall()
    ]


async def next_run_at(conn: ReadConnection, types: tuple[str, ...], now_ms: int) -> int | None:
    """When the next pending job of these types comes due (epoch ms), if any is scheduled."""
    query = sql.query("next_run_at").format(types=",".join("?" * len(types)))
    row = await reads.fetch_one(conn, query, (*types, now_ms))
    return None if row is None or row[0] is None else int(row[0])
