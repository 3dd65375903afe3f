"""Snapshots of the read-model tables, straight from the SQLite file, for comparing them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

Tables = dict[str, list[tuple]]


def dump(path: Path, *, all_counts: bool = False) -> Tables:
    """Every read-model row, in a stable order (`job_counts` without its zero rows, unless
    `all_counts`: a rebuild does not recreate groups that dropped to zero)."""
    db = sqlite3.connect(path)
    try:
        counts = "" if all_counts else " WHERE n != 0"
        return {
            "jobs": db.execute("SELECT * FROM jobs ORDER BY id").fetchall(),
            "events": db.execute("SELECT * FROM events ORDER BY id").fetchall(),
            "job_counts": db.execute(
                f"SELECT * FROM job_counts{counts} ORDER BY 1,2,3,4,5,6,7"
            ).fetchall(),
            "idempotency_keys": db.execute(
                "SELECT * FROM idempotency_keys ORDER BY 1, 2"
            ).fetchall(),
            "tracking": db.execute("SELECT * FROM tracking").fetchall(),
        }
    finally:
        db.close()


def restore(path: Path, tables: Tables) -> None:
    """Puts the read models back as they were: the events after them become unprojected."""
    db = sqlite3.connect(path)
    try:
        with db:
            for table, rows in tables.items():
                db.execute(f"DELETE FROM {table}")
                if rows:
                    marks = ",".join("?" * len(rows[0]))
                    db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    finally:
        db.close()
