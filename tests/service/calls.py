"""Small HTTP calls that many service tests make."""

from __future__ import annotations

from typing import Any

import httpx


def create(
    client: httpx.Client, headers: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    """Creates a job (type `t` unless given) and returns it; anything but 201 fails the test."""
    response = client.post("/api/v1/jobs", json={"type": "t", **fields}, headers=headers)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job
