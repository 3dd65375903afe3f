from __future__ import annotations


class DomainError(Exception):
    """A rule of the Job aggregate was broken."""

    def __init__(self, message: str | None = None, *, job_id: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())
        self.job_id = job_id


class InvalidTransition(DomainError):
    """The job cannot make this change in its current state."""

    def __init__(self, *, job_id: str, state: str, action: str) -> None:
        super().__init__(f"A {state} job cannot be {action}.", job_id=job_id)
        self.state = state
        self.action = action


class JobDeleted(DomainError):
    """The job was deleted."""


class LeaseMismatch(DomainError):
    """The lease is not the job's current lease."""
