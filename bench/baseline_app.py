"""The baseline for job creation: a bare Starlette app whose POST /api/v1/jobs inserts one
row per request into an SQLite file through one shared aiosqlite connection (WAL,
synchronous=NORMAL) and commits. No auth, no events, no read models, no isolation between
requests (their statements interleave on the one connection), not power-loss durable.

Served by `uvicorn bench.baseline_app:app --loop uvloop --http httptools`; the database
file is $BENCH_BASELINE_DB.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator

import aiosqlite
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, type TEXT NOT NULL, "
    "body TEXT NOT NULL, created_at INTEGER NOT NULL)"
)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    conn = await aiosqlite.connect(os.environ.get("BENCH_BASELINE_DB", "baseline.db"))
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=NORMAL")
    await conn.execute(_SCHEMA)
    await conn.commit()
    app.state.db = conn
    try:
        yield
    finally:
        await conn.close()


async def create_job(request: Request) -> Response:
    body = await request.body()
    job = json.loads(body)
    job_id = str(uuid.uuid4())
    db: aiosqlite.Connection = request.app.state.db
    await db.execute(
        "INSERT INTO jobs (id, type, body, created_at) VALUES (?, ?, ?, ?)",
        (job_id, job.get("type", ""), body.decode(), int(time.time() * 1000)),
    )
    await db.commit()
    return Response(
        json.dumps({"id": job_id, **job}),
        201,
        {"Location": f"/api/v1/jobs/{job_id}"},
        media_type="application/json",
    )


async def list_jobs(request: Request) -> Response:
    db: aiosqlite.Connection = request.app.state.db
    async with db.execute("SELECT COUNT(*) FROM jobs") as cursor:
        row = await cursor.fetchone()
    return JSONResponse({"items": [], "total": row[0] if row else 0})


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/api/v1/jobs", create_job, methods=["POST"]),
        Route("/api/v1/jobs", list_jobs, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ],
    lifespan=lifespan,
)
