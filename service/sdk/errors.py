"""What the client raises: `JobtrailError`, and below it one class per error code of the API.

Every error answer of the API has one shape, `{"error": {"code", "message", "details"}}`;
`api_error(response)` turns it into the matching exception, keeping the status, the code and
the details. A server that cannot be reached, or a connection that breaks, is a
`TransportError` (its cause is httpx's error).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx


class JobtrailError(Exception):
    """The request did not give an answer the caller can use."""


class TransportError(JobtrailError):
    """The server could not be reached, or the connection broke."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach {url}: {reason}")
        self.url = url
        self.reason = reason


class ApiError(JobtrailError):
    """The server refused the request: `status`, the API's error `code`, `message`, `details`."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class BadRequestError(ApiError):
    """The request was invalid (`invalid_request`): `details` names the offending fields."""


class UnauthorizedError(ApiError):
    """The token is missing, malformed, wrongly signed or expired (`unauthorized`)."""


class ForbiddenError(ApiError):
    """The token lacks the scope the route needs (`forbidden`)."""


class NotFoundError(ApiError):
    """No such job, or one the caller may not see (`not_found`)."""


class MethodNotAllowedError(ApiError):
    """The route does not take this method (`method_not_allowed`)."""


class ConflictError(ApiError):
    """The request conflicts with the job's current state (`conflict`)."""


class LeaseLostError(ConflictError):
    """The lease is wrong, expired or revoked: stop working on the job (`lease_lost`)."""


class PayloadTooLargeError(ApiError):
    """The body is over the server's limit (`payload_too_large`)."""


class UnsupportedMediaTypeError(ApiError):
    """The body is not JSON (`unsupported_media_type`)."""


class RateLimitedError(ApiError):
    """Too many requests or open streams (`rate_limited`)."""


class ServerError(ApiError):
    """The server failed (`internal`, or any 5xx)."""


_BY_CODE: dict[str, type[ApiError]] = {
    "invalid_request": BadRequestError,
    "unauthorized": UnauthorizedError,
    "forbidden": ForbiddenError,
    "not_found": NotFoundError,
    "method_not_allowed": MethodNotAllowedError,
    "conflict": ConflictError,
    "lease_lost": LeaseLostError,
    "payload_too_large": PayloadTooLargeError,
    "unsupported_media_type": UnsupportedMediaTypeError,
    "rate_limited": RateLimitedError,
    "internal": ServerError,
}
_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    409: ConflictError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    429: RateLimitedError,
}


def api_error(response: httpx.Response) -> ApiError:
    """The exception for an error answer (its body read), by code, else by status."""
    try:
        error = response.json()["error"]
        code, message, details = str(error["code"]), str(error["message"]), error.get("details")
    except (ValueError, KeyError, TypeError):  # not the API's shape: a proxy's page, say
        code, message, details = "unknown", response.text[:200] or response.reason_phrase, None
    status = response.status_code
    kind = _BY_CODE.get(code) or _BY_STATUS.get(status)
    if kind is None:
        kind = ServerError if status >= 500 else ApiError
    return kind(status, code, message, details)
