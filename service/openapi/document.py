"""The OpenAPI 3.1 document served at GET /openapi.json.

It states API.md, plus the decisions API.md leaves open, in the `description` fields: this
document is where those decisions are recorded. Each route group is one `*paths()` function
under one tag (in openapi/jobs.py, events.py, workers.py, or here for the operations routes); a
new group is one more `_tagged(...)` line in `document()` and one more row in `TAGS`. The groups
build their operations with openapi/builders.py and never import this module; the links
between operations are added last (openapi/links.py).
"""

from __future__ import annotations

from typing import Any

from service.openapi import events, jobs, links, workers
from service.openapi import schemas as s
from service.openapi.builders import ERROR_RESPONSES, JSON, Paths, Schema, json_response, operation

TAGS = (
    ("Jobs", "Create, read, change, cancel, replay and delete jobs."),
    ("Events", "Every job's immutable event history: pages, or a live SSE stream."),
    ("Workers", "Claim jobs, renew leases, report progress, logs and outcomes."),
    ("Session", "Sign in and out of a browser: the HttpOnly cookie that holds its token."),
    ("Operations", "Health, readiness, metrics and this document. No auth."),
    ("Dashboard", "The web dashboard: HTML pages and their files. No auth (the page signs in)."),
)


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": _info(),
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "paths": links.add(
            _merge(
                _tagged("Jobs", jobs.paths()),
                _tagged("Events", events.paths()),
                _tagged("Workers", workers.paths()),
                _tagged("Session", events.session_paths()),
                _tagged("Operations", _operations_paths()),
                _tagged("Dashboard", _dashboard_paths()),
            )
        ),
        "components": {
            "schemas": s.schemas() | workers.schemas() | events.schemas(),
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


def _operations_paths() -> Paths:
    readiness = (
        "The store answers reads and takes writes: `projection_lag` events await the read models."
    )
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
            unreachable = (
                "The store cannot be read, or cannot take writes: `status` is `unavailable`, "
                "`reason` says why."
            )
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


def _dashboard_paths() -> Paths:
    page = {
        "description": "The dashboard's page; its script shows the view the path names.",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
    policy = (
        " Served with a Content-Security-Policy that allows nothing external and no inline"
        " script (`default-src 'none'; script-src 'self'; …`). The query is the page's own"
        " (`token`: a sign-in link; filters)."
    )
    files = {
        media: {"schema": {"type": "string"}}
        for media in ("text/javascript", "text/css", "text/html", "image/svg+xml")
    }
    asset = operation(
        "getDashboardFile",
        "A file of the dashboard",
        scope=None,
        description="A script, style sheet or icon of the dashboard; any other name → 404.",
        responses={"200": {"description": "The file.", "content": files}},
        errors=(404,),
    )
    asset["parameters"] = [
        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    ]

    def view(operation_id: str, summary: str, description: str, **more: Any) -> Paths:
        return {
            "get": operation(
                operation_id,
                summary,
                scope=None,
                description=description + policy,
                responses={"200": page},
                **more,
            )
        }

    return {
        "/": view("getDashboard", "The dashboard: the jobs", "The jobs, live."),
        "/jobs/{id}": view(
            "getDashboardJob",
            "The dashboard: one job",
            "One job, its timeline live. A malformed id → 404.",
            errors=(404,),
            parameters=("JobId",),
        ),
        "/static/{name}": {"get": asset},
    }


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
        "A browser's session: the HttpOnly, `SameSite=Strict` cookie set by "
        "`POST /api/v1/session` (called with the Bearer header); it expires with the token. "
        "Every `/api/v1` route reads it when the request has no Authorization header (the "
        "header wins). CSRF: with the cookie, a request of any method but GET, HEAD and OPTIONS "
        "must carry `Sec-Fetch-Site: same-origin`, or, when the browser sends no "
        "`Sec-Fetch-Site`, an `Origin` equal to this server's own origin (scheme, host, port); "
        "else 403."
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
