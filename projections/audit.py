"""Every read-model row, for `jobtrail audit verify` to compare with the fold of the events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from projections import sql

if TYPE_CHECKING:
    from collections.abc import Iterator

    from projections.sql import Cursor

TABLES = ("events", "jobs", "idempotency_keys", "job_counts", "tracking")


def rows(cursor: Cursor, table: str) -> list[tuple[Any, ...]]:
    """A read table's rows, each as a tuple of its columns in schema order."""
    if table not in TABLES:
        raise ValueError(f"Not a read table: {table!r}.")
    cursor.execute(sql.query(f"audit_{table}"))
    return [tuple(row) for row in cursor.fetchall()]


BY_JOB = ("events", "jobs", "idempotency_keys")


def rows_by_job(cursor: Cursor, table: str) -> Iterator[tuple[Any, ...]]:
    """A read table's rows in the order of their job id (then their own key), one at a time:
    for `audit verify` to walk beside the events in job order at constant memory."""
    if table not in BY_JOB:
        raise ValueError(f"Not a read table by job: {table!r}.")
    cursor.execute(sql.query(f"audit_{table}_by_job"))
    return iter(cursor.fetchone, None)  # rows as the cursor makes them (tuples, in a scan)
