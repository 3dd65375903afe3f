"""Helpers for the worker-route tests: a worker's HTTP calls, as an SDK-less worker makes them."""

from __future__ import annotations

import functools
from typing import Any

import httpx

from tests.service import calls


def claim(
    worker: httpx.Client, types: list[str], *, lease: float = 30, wait: float = 0, **more: Any
) -> dict[str, Any] | None:
    body = {"types": types, "worker_id": "w-test", "lease_seconds": lease, "wait_seconds": wait}
    response = worker.post("/api/v1/workers/claim", json=body | more)
    if response.status_code == 204:
        return None
    assert response.status_code == 200, response.text
    claimed: dict[str, Any] = response.json()
    return claimed


def call(
    worker: httpx.Client, claimed: dict[str, Any], action: str, body: Any = None
) -> httpx.Response:
    job_id = claimed["job"]["id"]
    headers = {"Job-Lease": claimed["lease"]["token"]}
    return worker.post(f"/api/v1/jobs/{job_id}/{action}", json=body, headers=headers)


create = functools.partial(calls.create, type="t.a")
