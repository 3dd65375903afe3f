"""The API's one error shape, and the translation of every failure into it, once."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from domain import errors as domain_errors
from projections import reads
from service import errors

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ExceptionHandler

log = logging.getLogger("jobtrail")

_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


class ApiError(Exception):
    """A request failed in a way the client should hear about."""

    status = 400
    code = "invalid_request"
    default_message = "Invalid request."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.details = dict(details or {})
        self.headers = dict(headers or {})


class InvalidRequest(ApiError):
    """The request is invalid; `details` names the offending fields."""


class Unauthorized(ApiError):
    """The request carries no valid bearer token (nor session cookie)."""

    status, code, default_message = (
        401,
        "unauthorized",
        "A valid bearer token or session cookie is required.",
    )

    def __init__(
        self, message: str | None = None, *, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    """The token lacks the scope this route needs, or a cookie's request is cross-origin."""

    status, code, default_message = 403, "forbidden", "The token lacks the required scope."


class NotFound(ApiError):
    """No such job, or not one the caller may see."""

    status, code, default_message = 404, "not_found", "Job not found."


class Conflict(ApiError):
    """The request conflicts with the job's current state."""

    status, code, default_message = 409, "conflict", "The request conflicts with the job's state."


class LeaseLost(ApiError):
    """The worker's lease is wrong or has expired."""

    status, code, default_message = 409, "lease_lost", "The lease is not held."


class PayloadTooLarge(ApiError):
    """The request body exceeds the limit."""

    status, code, default_message = 413, "payload_too_large", "The request body is too large."


class UnsupportedMediaType(ApiError):
    """The request body is not JSON."""

    status, code = 415, "unsupported_media_type"
    default_message = "The request body must be application/json."


class RequestTimeout(ApiError):
    """The request took too long to arrive (a body dribbled in)."""

    status, code, default_message = 408, "request_timeout", "The request took too long."

    # The rest of the body may still be on its way: end the connection rather than read it.
    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, headers={"Connection": "close"}, **kwargs)


class RateLimited(ApiError):
    """Too many requests or open streams."""

    status, code, default_message = 429, "rate_limited", "Too many requests."


class Internal(ApiError):
    """The server failed; the cause is in its log, never in the answer."""

    status, code, default_message = 500, "internal", "Internal server error."


class Unavailable(ApiError):
    """The database cannot be reached or cannot take the request now; retry shortly.
    `details.reason` says why, in `/readyz`'s words (`errors.Fault`)."""

    status, code, default_message = 503, "unavailable", "The store is unavailable; retry shortly."

    def __init__(self, fault: errors.Fault) -> None:
        super().__init__(
            f"The store is unavailable ({fault}); retry shortly.",
            details={"reason": str(fault)},
            headers={"Retry-After": "1"},
        )


def error_response(
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": dict(details or {})}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


def translate(exc: errors.ServiceError | domain_errors.DomainError) -> ApiError:
    """The one translation of the application's and the domain's errors into the API's."""
    match exc:
        case errors.JobNotFound() | domain_errors.JobDeleted():
            return NotFound()
        case errors.NoActiveJob():
            return NotFound(exc.message)
        case errors.IdempotencyKeyReused():
            return Conflict(
                exc.message, details={"Idempotency-Key": "reused with a different body"}
            )
        case errors.IdempotencyKeyOfDeletedJob() | errors.ConcurrentChange():
            return Conflict(exc.message)
        case errors.LeaseLost():
            return LeaseLost()
        case domain_errors.LeaseMismatch():
            return LeaseLost(str(exc))
        case errors.TooManyStreams():
            return RateLimited(exc.message)
        case errors.StoreUnavailable():
            return Unavailable(exc.fault)
        case domain_errors.DomainError():
            return Conflict(str(exc))
        case _:  # a ServiceError added without a line here: say so loudly, answer safely
            log.error("no API error for %r", exc)
            return Internal()


async def _translated(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.ServiceError | domain_errors.DomainError)
    error = translate(exc)
    return error_response(error.status, error.code, error.message, error.details, error.headers)


async def _reads_unavailable(_: Request, exc: Exception) -> Response:
    error = Unavailable(errors.Fault.UNREACHABLE)
    return error_response(error.status, error.code, error.message, error.details, error.headers)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _CODES.get(exc.status_code, "invalid_request" if exc.status_code < 500 else "internal")
    message = "Route not found." if exc.status_code == 404 else str(exc.detail)
    return error_response(exc.status_code, code, message, headers=exc.headers)


def unexpected(exc: BaseException) -> Response:
    """The 500 for a failure nobody foresaw: logged with its traceback, which never leaks."""
    log.error("unhandled error", exc_info=exc)
    return error_response(Internal.status, Internal.code, Internal.default_message)


async def _unexpected(_: Request, exc: Exception) -> Response:
    return unexpected(exc)


# The failures that handlers() answers with an API error of their own.
EXPECTED = (
    ApiError,
    errors.ServiceError,
    domain_errors.DomainError,
    reads.ReadsUnavailable,
    HTTPException,
)


def handlers() -> dict[Any, ExceptionHandler]:
    return {
        ApiError: _api_error,
        errors.ServiceError: _translated,
        domain_errors.DomainError: _translated,
        reads.ReadsUnavailable: _reads_unavailable,
        HTTPException: _http_error,
        Exception: _unexpected,
    }
