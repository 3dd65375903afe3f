"""The application's errors: what went wrong, in the application's words, with no HTTP status.

Raised by the commands, the writer, the store and the live streams; the HTTP edge maps each
to the API's error shape in one place (service/edge/api_errors.py). A docstring's first line is
the error's default message.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from uuid import UUID


class ServiceError(Exception):
    """The request cannot be carried out."""

    def __init__(self, message: str | None = None) -> None:
        doc = type(self).__doc__ or ""
        super().__init__(message or doc.strip().splitlines()[0])

    @property
    def message(self) -> str:
        return str(self)


class JobNotFound(ServiceError):
    """Job not found."""

    def __init__(self, job_id: UUID | None = None) -> None:
        super().__init__()
        self.job_id = job_id


class NoActiveJob(ServiceError):
    """No active job found."""

    def __init__(self, owner: str) -> None:
        super().__init__()
        self.owner = owner


class IdempotencyKeyReused(ServiceError):
    """This Idempotency-Key was used with a different request body."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


class IdempotencyKeyOfDeletedJob(ServiceError):
    """This Idempotency-Key was used for a job that has been deleted."""

    def __init__(self, key: str, job_id: UUID) -> None:
        super().__init__()
        self.key = key
        self.job_id = job_id


class ConcurrentChange(ServiceError):
    """The job was changed concurrently; try again."""

    def __init__(self, job_ids: tuple[UUID, ...] = ()) -> None:
        super().__init__()
        self.job_ids = job_ids


class LeaseLost(ServiceError):
    """The lease is not held."""

    def __init__(self, job_id: UUID, message: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


class Fault(StrEnum):
    """What keeps the database from serving, in the words `/readyz` and a 503 say it: a fixed
    vocabulary, never the driver's message (which may hold a path, a host or a user)."""

    READ_ONLY = "database is read-only"
    DISK_FULL = "disk full"
    LOCKED = "database locked"  # another process holds the write lock beyond the timeout
    UNREACHABLE = "database unreachable"  # no connection (down, restarting, refusing)
    IO_ERROR = "database I/O error"  # any other failure of the database to read or write


class StoreUnavailable(ServiceError):
    """The event store cannot take writes now."""

    def __init__(self, fault: Fault = Fault.UNREACHABLE) -> None:
        super().__init__()
        self.fault = fault


class TooManyStreams(ServiceError):
    """Too many open streams."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"At most {limit} open streams per user; close one first.")
        self.limit = limit
