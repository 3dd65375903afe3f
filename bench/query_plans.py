"""The SQL the service really runs for a list page, its EXPLAIN QUERY PLAN, and its cost
without HTTP: `projections.jobs_view.list_jobs` is run against a recording stand-in for the
aiosqlite connection (over sqlite3 on the same file), so the statements are the service's own.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.datastructures import QueryParams

from bench.report import percentile
from projections import jobs_view
from service.edge.params import Params
from service.edge.routes import jobs as jobs_api
from service.principal import Principal


class _Result:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> _Result:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()


@dataclass
class _Recording:
    """Quacks like the part of `aiosqlite.Connection` that jobs_view uses."""

    conn: sqlite3.Connection
    statements: list[tuple[str, list[Any]]] = field(default_factory=list)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Result:
        self.statements.append((sql, list(params)))
        return _Result(self.conn.execute(sql, params))


@dataclass
class Plan:
    sql: str
    params: list[Any]
    lines: list[str]

    @property
    def warnings(self) -> list[str]:
        return [
            line for line in self.lines if line.lstrip().startswith("SCAN") or "TEMP B-TREE" in line
        ]


def _query(query_string: str, owner: str) -> jobs_view.JobQuery:
    """The JobQuery the list route builds from this query string (its own parsing)."""
    principal = Principal(
        sub=owner, scopes=frozenset({"jobs:read"}), expires_at=datetime(9999, 1, 1, tzinfo=UTC)
    )
    allowed = getattr(jobs_api, "LIST_PARAMETERS", None)
    raw = QueryParams(query_string)
    params = Params(raw) if allowed is None else Params(raw, allowed)  # type: ignore[call-arg]
    query, _ = jobs_api.job_query(params, principal)
    return query


def _connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA query_only = ON")
    return conn


def explain_call(db: Path, call: Callable[[Any], Awaitable[Any]]) -> list[Plan]:
    """Runs `call(connection)` (a read-model query function of the service) on a recording
    connection; returns each statement it ran with its query plan."""
    conn = _connect(db)
    try:
        recording = _Recording(conn)
        asyncio.run(_awaited(call(recording)))
        return [plan_of(conn, sql, params) for sql, params in recording.statements]
    finally:
        conn.close()


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def explain(db: Path, query_string: str, owner: str) -> list[Plan]:
    """The statements of one list request and each one's query plan."""
    query = _query(query_string, owner)
    return explain_call(db, lambda conn: jobs_view.list_jobs(conn, query))


def plan_of(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> Plan:
    rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    depth: dict[int, int] = {0: -1}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return Plan(sql=" ".join(sql.split()), params=list(params), lines=lines)


def sql_cost(db: Path, query_string: str, owner: str, repeat: int) -> tuple[float, float]:
    """p50 and p99 of one list request's statements run directly (no HTTP, no threads)."""
    conn = _connect(db)
    try:
        samples = asyncio.run(_repeat(conn, _query(query_string, owner), repeat))
        return percentile(samples, 50), percentile(samples, 99)
    finally:
        conn.close()


async def _repeat(conn: sqlite3.Connection, query: jobs_view.JobQuery, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await jobs_view.list_jobs(_Recording(conn), query)  # type: ignore[arg-type]
        samples.append(time.perf_counter() - started)
    return samples


def render(title: str, plans: list[Plan]) -> str:
    out = [f"-- {title}"]
    for plan in plans:
        sql = plan.sql if len(plan.sql) <= 240 else plan.sql[:237] + "..."
        out.append(f"   {sql}")
        out += [f"     {line}" for line in plan.lines]
    return "\n".join(out)
