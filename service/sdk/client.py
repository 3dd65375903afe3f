"""`JobsClient`: the jobtrail HTTP API from Python, over `httpx.AsyncClient`.

Workers use the `Workers` calls (claim, heartbeat, progress, logs, succeed, fail, cancelled);
the job calls (create, get) are for clients and tests. Every error status becomes one typed
exception (`ApiError` and its subclasses), mapped in `_raise_for`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from types import TracebackType


class ApiError(Exception):
    """The server refused the request."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class NotFoundError(ApiError):
    """No such job, or one the caller may not see."""


class ConflictError(ApiError):
    """The request conflicts with the job's current state."""


class LeaseLostError(ConflictError):
    """The lease is wrong, expired or revoked: stop working on the job."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """A claimed job and its lease."""

    job: dict[str, Any]
    token: str
    expires_at: str

    @property
    def job_id(self) -> str:
        return str(self.job["id"])


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseState:
    """What a heartbeat, progress or log call answers."""

    cancel_requested: bool
    lease_expires_at: str | None


class JobsClient:
    """An async client of one jobtrail server.

    `transport` lets tests and in-process workers call an ASGI app directly
    (`httpx.ASGITransport(app=...)`).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            transport=transport,
            timeout=timeout,
        )

    async def __aenter__(self) -> JobsClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # Jobs.

    async def create_job(self, job_type: str, **fields: Any) -> dict[str, Any]:
        """Creates a job (POST /api/v1/jobs) and returns it."""
        return await self._json("POST", "/api/v1/jobs", json={"type": job_type, **fields})

    async def get_job(self, job_id: str) -> dict[str, Any]:
        """The job (GET /api/v1/jobs/{id})."""
        return await self._json("GET", f"/api/v1/jobs/{job_id}")

    # Workers.

    async def claim(
        self,
        types: list[str],
        *,
        worker_id: str,
        lease_seconds: float = 30,
        wait_seconds: float = 0,
    ) -> Claim | None:
        """Claims the best due job of these types; None when nothing came due in time."""
        body = {
            "types": types,
            "worker_id": worker_id,
            "lease_seconds": lease_seconds,
            "wait_seconds": wait_seconds,
        }
        response = await self._http.post(
            "/api/v1/workers/claim", json=body, timeout=wait_seconds + 30
        )
        if response.status_code == 204:
            return None
        _raise_for(response)
        data = response.json()
        lease = data["lease"]
        return Claim(job=data["job"], token=lease["token"], expires_at=lease["expires_at"])

    async def heartbeat(self, job_id: str, token: str) -> LeaseState:
        """Renews the lease."""
        return _lease(await self._worker_call(job_id, token, "heartbeat", None))

    async def progress(self, job_id: str, token: str, **fields: Any) -> LeaseState:
        """Reports progress (any of percent, stage, message, total, completed, failed)."""
        return _lease(await self._worker_call(job_id, token, "progress", fields))

    async def log(
        self, job_id: str, token: str, message: str, *, level: str = "info", data: Any = None
    ) -> LeaseState:
        """Appends one log line."""
        body = {"level": level, "message": message, "data": data}
        return _lease(await self._worker_call(job_id, token, "logs", body))

    async def succeed(
        self, job_id: str, token: str, result: Any = None, result_type: str | None = None
    ) -> dict[str, Any]:
        """Reports success; returns the finished job."""
        body = {"result": result, "result_type": result_type}
        return await self._worker_call(job_id, token, "succeed", body)

    async def fail(
        self,
        job_id: str,
        token: str,
        message: str,
        *,
        code: str = "error",
        details: Any = None,
        retry: bool = True,
    ) -> dict[str, Any]:
        """Reports a failed attempt; retried when attempts are left and `retry` is true."""
        body = {"error": {"message": message, "code": code, "details": details}, "retry": retry}
        return await self._worker_call(job_id, token, "fail", body)

    async def cancelled(self, job_id: str, token: str) -> dict[str, Any]:
        """Acknowledges a requested cancel: the job ends `cancelled`."""
        return await self._worker_call(job_id, token, "cancelled", None)

    async def _worker_call(
        self, job_id: str, token: str, action: str, body: dict[str, Any] | None
    ) -> dict[str, Any]:
        return await self._json(
            "POST", f"/api/v1/jobs/{job_id}/{action}", json=body, headers={"Job-Lease": token}
        )

    async def _json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._http.request(method, url, **kwargs)
        _raise_for(response)
        data: dict[str, Any] = response.json()
        return data


def _lease(data: dict[str, Any]) -> LeaseState:
    return LeaseState(
        cancel_requested=bool(data["cancel_requested"]),
        lease_expires_at=data.get("lease_expires_at"),
    )


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        error = response.json()["error"]
        code, message, details = error["code"], error["message"], error.get("details")
    except (ValueError, KeyError, TypeError):
        code, message, details = "unknown", response.text[:200], None
    status = response.status_code
    kind: type[ApiError] = ApiError
    if code == "lease_lost":
        kind = LeaseLostError
    elif status == 404:
        kind = NotFoundError
    elif status == 409:
        kind = ConflictError
    raise kind(status, code, message, details)
