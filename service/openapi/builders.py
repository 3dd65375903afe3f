"""The building blocks every route group of the OpenAPI document uses: an operation with its
error responses, a JSON request body, a JSON response."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.openapi import schemas as s

if TYPE_CHECKING:
    from collections.abc import Mapping

Schema = dict[str, Any]
Paths = dict[str, dict[str, Schema]]

JSON = "application/json"
# API.md, "Auth": every /api/v1 route takes the Bearer header or, without one, the session cookie.
API_AUTH = ("bearerAuth", "tokenCookie")
BEARER_ONLY = ("bearerAuth",)
ERROR_RESPONSES = (
    (400, "BadRequest", "Invalid request; `details` names the offending fields or parameters."),
    (401, "Unauthorized", "Missing, malformed, wrongly signed, expired or not-yet-valid token."),
    (
        403,
        "Forbidden",
        "The token lacks the scope this route needs; or, signed in by the session cookie, a"
        " POST, PATCH or DELETE that did not come from this server's own origin.",
    ),
    (404, "NotFound", "No such job, or one the caller may not see: both answer alike."),
    (409, "Conflict", "The request conflicts with the job's current state."),
    (
        408,
        "RequestTimeout",
        "The body did not arrive within its limit (30 s by default); nothing is written, and"
        " the connection is closed.",
    ),
    (413, "PayloadTooLarge", "The body is over its limit (1 MiB by default); nothing is written."),
    (415, "UnsupportedMediaType", "The request body is not `application/json` in UTF-8."),
    (
        429,
        "RateLimited",
        "Too many requests of this owner (`Retry-After`: the seconds until one is admitted"
        " again); for streams also: too many open streams of this user. Nothing is written.",
    ),
    (500, "InternalError", "A server error. Its body never holds a traceback."),
)


def operation(
    operation_id: str,
    summary: str,
    *,
    scope: str | None,
    description: str,
    responses: Mapping[str, Schema],
    errors: tuple[int, ...] = (),
    notes: Mapping[int, str] | None = None,
    parameters: tuple[str, ...] = (),
    body: Schema | None = None,
    auth: tuple[str, ...] = API_AUTH,
) -> Schema:
    operation: Schema = {"operationId": operation_id, "summary": summary}
    if scope is None:
        operation |= {"description": description, "security": []}
    else:
        operation |= {
            "description": f"Scope `{scope}`. {description}",
            "security": [{scheme: []} for scheme in auth],
            "x-required-scope": scope,
        }
        errors = (*errors, 401, 403, 429)  # 429: the per-owner request rate
    if 413 in errors:  # a route that reads a body: it may arrive too slowly
        errors = (*errors, 408)
    if parameters:
        operation["parameters"] = [s.ref(name, "parameters") for name in parameters]
    if body is not None:
        operation["requestBody"] = body
    operation["responses"] = dict(responses) | {
        str(code): _error_ref(code, (notes or {}).get(code)) for code in sorted({*errors, 500})
    }
    return operation


def _error_ref(status: int, note: str | None) -> Schema:
    name = next(name for code, name, _ in ERROR_RESPONSES if code == status)
    reference = s.ref(name, "responses")
    if note:
        reference["description"] = note  # OpenAPI 3.1: overrides the component's description.
    return reference


def json_body(schema: str, description: str, *, required: bool = True) -> Schema:
    content = {JSON: {"schema": s.ref(schema)}}
    return {"required": required, "description": description, "content": content}


def json_response(schema: str, description: str, *headers: str) -> Schema:
    response: Schema = {"description": description, "content": {JSON: {"schema": s.ref(schema)}}}
    if headers:
        response["headers"] = {name: s.ref(name, "headers") for name in headers}
    return response
