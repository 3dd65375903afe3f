"""The OpenAPI 3.1 document served at GET /openapi.json.

It states API.md, plus the decisions API.md leaves open, in the `description` fields: this
document is where those decisions are recorded. Each route group is one `*_paths()` function
under one tag; a new group (workers, session) is one more `_tagged(...)` line in `document()`
and one more row in `TAGS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.openapi import events as openapi_streams
from service.openapi import schemas as s
from service.openapi import workers as openapi_workers

if TYPE_CHECKING:
    from collections.abc import Mapping

Schema = dict[str, Any]
Paths = dict[str, dict[str, Schema]]

JSON = "application/json"
BEARER_ONLY = ("bearerAuth",)
TAGS = (
    ("Jobs", "Create, read, change, cancel, replay and delete jobs."),
    ("Events", "Every job's immutable event history: pages, or a live SSE stream."),
    ("Workers", "Claim jobs, renew leases, report progress, logs and outcomes."),
    ("Session", "The browser's token cookie, for `EventSource` (which cannot send headers)."),
    ("Operations", "Health, readiness, metrics and this document. No auth."),
)
ERROR_RESPONSES = (
    (400, "BadRequest", "Invalid request; `details` names the offending fields or parameters."),
    (401, "Unauthorized", "Missing, malformed, wrongly signed, expired or not-yet-valid token."),
    (403, "Forbidden", "The token lacks the scope this route needs."),
    (404, "NotFound", "No such job, or one the caller may not see: both answer alike."),
    (409, "Conflict", "The request conflicts with the job's current state."),
    (413, "PayloadTooLarge", "The body is over its limit (1 MiB by default); nothing is written."),
    (415, "UnsupportedMediaType", "The request body is not `application/json`."),
    (429, "RateLimited", "Too many requests; for streams: too many open streams of this user."),
    (500, "InternalError", "A server error. Its body never holds a traceback."),
)


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": _info(),
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "paths": _merge(
            _tagged("Jobs", _job_paths()),
            _tagged("Events", openapi_streams.paths()),
            _tagged("Workers", openapi_workers.paths()),
            _tagged("Session", openapi_streams.session_paths()),
            _tagged("Operations", _operations_paths()),
        ),
        "components": {
            "schemas": s.schemas() | openapi_workers.schemas(),
            "parameters": s.parameters(),
            "headers": _headers(),
            "responses": _error_responses(),
            "securitySchemes": _security_schemes(),
        },
    }


def _info() -> Schema:
    return {
        "title": "jobtrail",
        "version": "1.0.0",
        "summary": "An event-sourced job service with live progress.",
        "description": (
            "JSON bodies in UTF-8, `snake_case` fields. Job ids are UUIDs; event ids are "
            "integers (the global event cursor). Timestamps are RFC 3339 UTC with milliseconds; "
            "time query parameters also take Unix epoch milliseconds. A caller sees and acts on "
            "only the jobs it owns (`admin`: every job): someone else's job answers 404, exactly "
            "like a missing one. Every error has the `Error` shape. Limits (configurable): "
            "request body 1 MiB (→ 413); `payload`, `result`, `metadata` 256 KiB each, log "
            "`message` 8 KiB, 1000 children per batch (→ 400 naming the field). A request "
            "that fails writes nothing. Read-your-writes: once a write is answered, reads on "
            "the same server show it. Values (fixed), in every JSON body however deep: numbers "
            "finite, integers in -2^63..2^63-1, strings and keys valid Unicode (no lone "
            "surrogate such as `\\ud800`), nesting at most 64 levels (→ 400 naming the value's "
            "path, e.g. `payload.items[2].x`). A list filter takes at most 100 distinct values."
        ),
    }


def _tagged(tag: str, paths: Paths) -> Paths:
    return {
        path: {m: {"tags": [tag], **op} for m, op in item.items()} for path, item in paths.items()
    }


def _merge(*groups: Paths) -> Paths:
    paths: Paths = {}
    for group in groups:
        for path, operations in group.items():
            item = paths.setdefault(path, {})
            clash = item.keys() & operations.keys()
            if clash:
                raise ValueError(f"{path}: {sorted(clash)} defined twice")
            item.update(operations)
    return paths


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
    auth: tuple[str, ...] = BEARER_ONLY,
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
        errors = (*errors, 401, 403)
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


def _job_paths() -> Paths:
    job_id = "/api/v1/jobs/{id}"
    created = json_response("Job", "Created: the new job.", "Location")
    return {
        "/api/v1/jobs": {"post": _create_job(), "get": _list_jobs()},
        job_id: {
            "get": operation(
                "getJob",
                "Get a job",
                scope="jobs:read",
                description=(
                    "With `as_of=N`, the job as it was after its event `seq` N, rebuilt from the "
                    "event store (audit time travel): its `version` is N and its `updated_at` "
                    "the time of event N; with `include=logs` too, `logs` holds the newest 100 "
                    "log events with `seq` ≤ N. Unknown, deleted, not-visible or malformed "
                    "id → 404."
                ),
                parameters=("JobId", "Include", "AsOf"),
                responses={"200": json_response("JobWithLogs", "The job.")},
                errors=(400, 404),
                notes={400: "Invalid `include`, or `as_of` beyond the job's `version`."},
            ),
            "patch": operation(
                "updateJob",
                "Rename, star or re-tag a job",
                scope="jobs:write",
                description="Changes the given fields and records an `updated` event.",
                parameters=("JobId",),
                body=json_body("JobPatch", "The fields to change."),
                responses={"200": json_response("Job", "The changed job.")},
                errors=(400, 404, 413, 415),
            ),
            "delete": operation(
                "deleteJob",
                "Delete a job",
                scope="jobs:write",
                description=(
                    "A running job is cancelled first (its worker's lease is revoked). The job "
                    "then answers 404 everywhere and leaves every list. Its events stay in the "
                    "event store, readable by `admin` through the events routes."
                ),
                parameters=("JobId",),
                responses={"204": {"description": "Deleted."}},
                errors=(404,),
            ),
        },
        f"{job_id}/cancel": {"post": _cancel_job()},
        "/api/v1/cancel": {
            "post": operation(
                "cancelNewestActiveJob",
                "Cancel the caller's newest active job",
                scope="jobs:write",
                description=(
                    "Cancels the newest active job the caller owns (also for `admin`), running "
                    "ones before pending ones, as `POST /api/v1/jobs/{id}/cancel` does."
                ),
                responses={"200": json_response("CancelResult", "The cancelled job.")},
                errors=(404,),
                notes={404: "No active job found."},
            )
        },
        f"{job_id}/replay": {
            "post": operation(
                "replayJob",
                "Run a job again",
                scope="jobs:write",
                description=(
                    "Creates a new job with the same `type`, `payload`, `name`, `category`, "
                    "`priority`, `metadata` and `max_attempts`, and `replayed_from` set to the "
                    "original id. Nothing else is copied: no `run_at`, no `starred`, no children."
                ),
                parameters=("JobId",),
                responses={"201": created},
                errors=(404,),
            )
        },
    }


def _create_job() -> Schema:
    replayed = "Idempotent replay: the original job; nothing was created."
    return operation(
        "createJob",
        "Create a job",
        scope="jobs:write",
        description=(
            "Creates a job, or with `children` a batch parent and its children at once. "
            "Read-your-writes: once the 201 is sent, GET and list on the same server show it."
        ),
        parameters=("IdempotencyKey",),
        body=json_body("JobCreate", "The job to create."),
        responses={
            "201": json_response("Job", "Created: the new job.", "Location"),
            "200": json_response("Job", replayed, "Idempotent-Replayed"),
        },
        errors=(400, 409, 413, 415),
        notes={
            400: "Invalid body: unknown fields, bad values and fields over their limit are "
            "named in `details`.",
            409: "The `Idempotency-Key` was used before with a different body, or its job "
            "has since been deleted.",
        },
    )


def _list_jobs() -> Schema:
    return operation(
        "listJobs",
        "List jobs",
        scope="jobs:read",
        description=(
            "The caller's jobs (`admin`: every job), filtered, sorted and paged by `offset` or "
            "by `cursor`. Filters combine with AND; the values of one filter with OR. Paging by "
            "cursor never skips or repeats a job while new jobs are being created."
        ),
        parameters=(
            *("Limit", "Offset", "Cursor", "Sort", "Order"),
            *("TypeFilter", "StatusFilter", "PriorityFilter", "CategoryFilter", "OwnerFilter"),
            *("ParentIdFilter", "FinishedFilter", "StarredFilter", "ResultTypeFilter"),
            *("CreatedFrom", "CreatedTo"),
        ),
        responses={"200": json_response("JobPage", "One page of jobs.")},
        errors=(400,),
        notes={
            400: "An invalid parameter value, or both `offset` and `cursor`, or a cursor "
            "used with another sort, order or filters; `details` names the parameter."
        },
    )


def _cancel_job() -> Schema:
    return operation(
        "cancelJob",
        "Cancel a job",
        scope="jobs:write",
        description=(
            "A pending job becomes `cancelled` at once. A running one gets `cancel_requested: "
            "true`: its worker stops at its next checkpoint and the job becomes `cancelled`; a "
            "worker that never acknowledges loses its lease and the job is cancelled then. "
            "Repeating the call is harmless (200). A batch parent cancels all its unfinished "
            "children."
        ),
        parameters=("JobId",),
        body=json_body("CancelRequest", "Optional: why.", required=False),
        responses={"200": json_response("Job", "The job, cancelled or cancelling.")},
        errors=(400, 404, 409, 413, 415),
        notes={409: "The job is already terminal."},
    )


def _operations_paths() -> Paths:
    readiness = "The store is reachable: `projection_lag` events await the read models."
    operations = (
        ("/healthz", "getHealth", "Liveness", json_response("Health", "The process is alive.")),
        ("/readyz", "getReadiness", "Readiness", json_response("Readiness", readiness)),
        ("/metrics", "getMetrics", "Prometheus metrics", _text_response()),
        ("/openapi.json", "getOpenApi", "This document", _openapi_response()),
    )
    paths: Paths = {}
    for path, operation_id, summary, ok in operations:
        responses = {"200": ok}
        if path == "/readyz":
            unreachable = "The store is unreachable: `status` is `unavailable`."
            responses["503"] = json_response("Readiness", unreachable)
        paths[path] = {
            "get": operation(
                operation_id,
                summary,
                scope=None,
                description=f"{summary}. No auth.",
                responses=responses,
            )
        }
    return paths


def _text_response() -> Schema:
    text = {"schema": {"type": "string", "description": "Prometheus text exposition format."}}
    return {"description": "The metrics.", "content": {"text/plain": text}}


def _openapi_response() -> Schema:
    content = {JSON: {"schema": {"type": "object", "description": "An OpenAPI 3.1 document."}}}
    return {"description": "This document.", "content": content}


def _error_responses() -> Schema:
    content = {JSON: {"schema": s.ref("Error")}}
    responses = {
        name: {"description": text, "content": content} for _, name, text in ERROR_RESPONSES
    }
    responses["Unauthorized"]["headers"] = {
        "WWW-Authenticate": s.ref("WWW-Authenticate", "headers")
    }
    return responses


def _headers() -> Schema:
    def header(description: str, schema: Schema) -> Schema:
        return {"description": description, "schema": schema}

    return {
        "Location": header("`/api/v1/jobs/{id}`: the new job.", s.string(format="uri-reference")),
        "Idempotent-Replayed": header("`true` on an idempotent replay.", s.enum(("true",))),
        "WWW-Authenticate": header("Always `Bearer`.", s.string()),
        "Cache-Control": header("`no-cache` on the SSE form.", s.string()),
        "X-Accel-Buffering": header("`no` on the SSE form.", s.string()),
    }


def _security_schemes() -> Schema:
    bearer = (
        "A JWT. Claims: `sub` (required: the user id, which becomes the job's `owner`), `exp` "
        "(required), `scope` (space-separated: `jobs:read`, `jobs:write`, `worker`, `admin`; "
        "no `scope` claim means `jobs:read jobs:write`). The algorithm is pinned by "
        "configuration (HS256 by default; RS256/ES256 with a public key); `iss`/`aud` are "
        "enforced when configured; `alg: none` is never accepted. A bad token → 401 with "
        "`WWW-Authenticate: Bearer`; a missing scope → 403."
    )
    cookie = (
        "The SSE forms only: the HttpOnly, `SameSite=Strict` cookie set by "
        "`POST /api/v1/session` (called with the Bearer header); it expires with the token."
    )
    query = "The SSE forms only, for clients that can send neither header nor cookie. Never logged."
    return {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        | {"description": bearer},
        "tokenCookie": _api_key("cookie", "jobtrail_token", cookie),
        "accessToken": _api_key("query", "access_token", query),
    }


def _api_key(where: str, name: str, description: str) -> Schema:
    return {"type": "apiKey", "in": where, "name": name, "description": description}
