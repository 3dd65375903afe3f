"""The jobs read model's queries: one job, and filtered, sorted pages with exact totals."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from domain.states import TERMINAL
from projections import reads, sql

if TYPE_CHECKING:
    from projections.reads import ReadConnection
    from projections.sql import Cursor

# Each sort's columns; `created_seq` (creation order) makes every key unique.
SORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "created_at": ("created_at", "created_seq"),
    "updated_at": ("updated_at", "created_seq"),
    "finished_at": ("finished_at", "created_seq"),
    "priority": ("priority", "created_at", "created_seq"),
}
_TERMINAL = tuple(sorted(state.value for state in TERMINAL))


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRow:
    id: str
    owner: str
    status: str
    version: int
    last_event_id: int
    document: str

    @classmethod
    def from_row(cls, row: Any) -> JobRow:
        return cls(
            id=row[0],
            owner=row[1],
            status=row[2],
            version=row[3],
            last_event_id=row[4],
            document=row[5],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobQuery:
    """`owner` is the tenancy scope (None: every owner, for admins); the rest are filters."""

    owner: str | None
    owners: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    priorities: tuple[int, ...] = ()
    categories: tuple[str, ...] = ()
    parent_ids: tuple[str, ...] = ()
    result_types: tuple[str, ...] = ()
    finished: bool | None = None
    starred: bool | None = None
    created_from: int | None = None
    created_to: int | None = None
    sort: str = "created_at"
    order: str = "desc"
    limit: int = 20
    offset: int = 0
    after: tuple[int, ...] | None = None  # the sort key of the previous page's last job


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    items: list[JobRow]
    total: int
    next_key: tuple[int, ...] | None = None


@dataclass(slots=True)
class _Where:
    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def equal(self, column: str, value: Any) -> None:
        self.clauses.append(f"{column} = ?")
        self.params.append(value)

    def any_of(self, column: str, values: tuple[Any, ...]) -> None:
        if values:
            self.clauses.append(f"{column} IN ({','.join('?' * len(values))})")
            self.params.extend(values)

    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "TRUE"


_SELECT = "SELECT id, owner, status, version, last_event_id, document"


async def get(conn: ReadConnection, job_id: str, owner: str | None) -> JobRow | None:
    query = f"{_SELECT} FROM jobs WHERE id = ?"
    params: list[Any] = [job_id]
    if owner is not None:
        query += " AND owner = ?"
        params.append(owner)
    row = await reads.fetch_one(conn, query, params)
    return None if row is None else JobRow.from_row(row)


async def list_jobs(conn: ReadConnection, query: JobQuery) -> Page:
    where = _filters(query)
    columns = SORT_COLUMNS[query.sort]
    direction = "DESC" if query.order == "desc" else "ASC"
    keyset = _Where(list(where.clauses), list(where.params))
    if query.after is not None:
        comparison = "<" if query.order == "desc" else ">"
        keyset.clauses.append(
            f"({', '.join(columns)}) {comparison} ({', '.join('?' * len(columns))})"
        )
        keyset.params.extend(query.after)
    order_by = ", ".join(f"{column} {direction}" for column in columns)
    sql = (
        f"{_SELECT}, {', '.join(columns)} FROM jobs WHERE {keyset.sql()} "
        f"ORDER BY {order_by} LIMIT ? OFFSET ?"
    )
    offset = 0 if query.after is not None else query.offset
    rows = await reads.fetch_all(conn, sql, [*keyset.params, query.limit + 1, offset])
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_key = tuple(rows[-1][6:]) if more and rows else None
    total = await _total(conn, query, where)
    return Page(items=[JobRow.from_row(row) for row in rows], total=total, next_key=next_key)


def _filters(query: JobQuery) -> _Where:
    where = _shared_filters(query)
    where.any_of("parent_id", query.parent_ids)
    if query.finished is not None:
        where.equal("finished", int(query.finished))
    if query.created_from is not None:
        where.clauses.append("created_at >= ?")
        where.params.append(query.created_from)
    if query.created_to is not None:
        where.clauses.append("created_at < ?")
        where.params.append(query.created_to)
    return where


def _shared_filters(query: JobQuery) -> _Where:
    """The filters on columns that `jobs` and `job_counts` both have."""
    where = _Where()
    if query.owner is not None:
        where.equal("owner", query.owner)
    where.any_of("owner", query.owners)
    where.any_of("type", query.types)
    where.any_of("status", query.statuses)
    where.any_of("priority", query.priorities)
    where.any_of("category", query.categories)
    where.any_of("result_type", query.result_types)
    if query.starred is not None:
        where.equal("starred", int(query.starred))
    return where


async def _total(conn: ReadConnection, query: JobQuery, where: _Where) -> int:
    if query.parent_ids or query.created_from is not None or query.created_to is not None:
        # Not kept in job_counts: counted from the rows (cost grows with the matches).
        sql, params = f"SELECT COUNT(*) FROM jobs WHERE {where.sql()}", where.params
    else:
        counts = _shared_filters(query)
        if query.finished is not None:
            operator = "IN" if query.finished else "NOT IN"
            counts.clauses.append(f"status {operator} ({','.join('?' * len(_TERMINAL))})")
            counts.params.extend(_TERMINAL)
        sql = f"SELECT COALESCE(SUM(n), 0) FROM job_counts WHERE {counts.sql()}"
        params = counts.params
    row = await reads.fetch_one(conn, sql, params)
    assert row is not None
    return int(row[0])


# Inside the writer's transaction (a sync cursor): what commands look up before they act.


def newest_active_job(cursor: Cursor, owner: str, status: str) -> uuid.UUID | None:
    """The owner's newest job in `status` that was not already asked to stop."""
    cursor.execute(sql.query("newest_active_job"), (owner, status))
    row = cursor.fetchone()
    return None if row is None else uuid.UUID(row[0])


def idempotency_key(cursor: Cursor, owner: str, key: str) -> tuple[str, uuid.UUID] | None:
    """(request hash, job id) recorded for an owner's Idempotency-Key, if it was used."""
    cursor.execute(sql.query("find_idempotency_key"), (owner, key))
    row = cursor.fetchone()
    return None if row is None else (str(row[0]), uuid.UUID(row[1]))


def children(cursor: Cursor, parent_id: uuid.UUID, *, unfinished: bool = False) -> list[uuid.UUID]:
    """A batch parent's live children (only the unfinished ones if asked), oldest first."""
    query = sql.query("unfinished_children" if unfinished else "children")
    cursor.execute(query, (str(parent_id),))
    return [uuid.UUID(row[0]) for row in cursor.fetchall()]
