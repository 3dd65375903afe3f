"""Helpers for the worker-route tests: a worker's HTTP calls, as an SDK-less worker makes them."""

from __future__ import annotations

from typing import Any

import httpx


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


def create(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/jobs", json={"type": "t.a"} | body)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job
