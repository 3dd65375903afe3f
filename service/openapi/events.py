"""The streaming part of the served OpenAPI document: the events routes (JSON pages and their
Server-Sent Events form) and the browser's session, the cookie that holds its token."""

from __future__ import annotations

from typing import Any

from service import settings
from service.edge import auth
from service.openapi import builders as openapi
from service.openapi import schemas as s

Schema = dict[str, Any]
Paths = dict[str, dict[str, Schema]]
SSE = "text/event-stream"
_STREAMS = settings.Streams()  # the document states the defaults
# API.md: only the two SSE forms also read the query token.
STREAM_AUTH = (*openapi.API_AUTH, "accessToken")
EVENT_PAGING = ("After", "EventLimit", "Stream", "LastEventId")
SSE_FRAMING = (
    "Server-Sent Events, chosen by `Accept: text/event-stream` or `stream=true`. A `retry:` "
    "hint comes first. Each event is sent as `id: <event id>`, `event: <event type>`, "
    "`data: <Event JSON>`. The stream starts after the `Last-Event-ID` header (which wins over "
    "`after`, so a reconnect resumes), replays the backlog in id order, then goes live. A "
    f"comment line is sent as heartbeat after every {_STREAMS.heartbeat_seconds:g} s of "
    "silence. No event is ever skipped or sent twice across reconnects. The stream is closed "
    "when the token expires; reconnect with a fresh one."
)
SINGLE_JOB_END = (
    " The one-job stream ends with `event: end`, whose data is the final Job, once the job is "
    "terminal and every event was sent, then closes. A job deleted while it is followed ends "
    "the same way, after its `deleted` event (the final Job is the job as it was when deleted); "
    "a reconnect then answers 404, like every route for a deleted job (`admin`: 204)."
)
STREAM_LIMITS = (
    f" A user has at most {_STREAMS.max_per_owner} open streams (configurable: "
    "`JOBTRAIL_SSE_MAX_STREAMS_PER_OWNER`); one more answers 429. A client that does not accept "
    f"a write within {_STREAMS.send_timeout_seconds:g} s is disconnected; one that falls far "
    "behind is served from the store until it catches up, without a gap. The heartbeat interval "
    "is `JOBTRAIL_SSE_HEARTBEAT_SECONDS`."
)


def paths() -> Paths:
    deleted = " `admin` can still read the events of a deleted job."
    return {
        "/api/v1/jobs/{id}/events": {
            "get": _events_operation(
                "listJobEvents",
                "Read or follow one job's events",
                description="One job's events, in `seq` order." + deleted,
                parameters=("JobId", *EVENT_PAGING),
                page="JobEventPage",
                stream=SSE_FRAMING + SINGLE_JOB_END + STREAM_LIMITS,
            )
        },
        "/api/v1/events": {
            "get": _events_operation(
                "listEvents",
                "Read or follow every visible event",
                description="Every event the caller may see (own jobs; `admin`: all), for "
                "dashboards and audit tools." + deleted,
                parameters=("EventJobIdFilter", "EventTypeFilter", *EVENT_PAGING),
                page="EventPage",
                stream=SSE_FRAMING + STREAM_LIMITS,
            )
        },
    }


def _events_operation(
    operation_id: str,
    summary: str,
    *,
    description: str,
    parameters: tuple[str, ...],
    page: str,
    stream: str,
) -> Schema:
    one_job = page == "JobEventPage"
    ok: Schema = {
        "description": "A page of events (JSON, the default), or the live stream (SSE).",
        "headers": {
            name: s.ref(name, "headers") for name in ("Cache-Control", "X-Accel-Buffering")
        },
        "content": {
            openapi.JSON: {"schema": s.ref(page)},
            SSE: {"schema": {"type": "string", "description": stream}},
        },
    }
    responses = {"200": ok}
    if one_job:
        responses["204"] = {
            "description": "SSE only: a reconnect to a finished job with nothing left to send. "
            "This stops `EventSource`."
        }
    auth_note = (
        " Besides the Bearer header and the session cookie, the SSE form (only) takes the "
        "token from the `access_token` query parameter."
    )
    return openapi.operation(
        operation_id,
        summary,
        scope="jobs:read",
        description=description + auth_note,
        parameters=parameters,
        responses=responses,
        errors=(400, 404, 429) if one_job else (400, 429),
        auth=STREAM_AUTH,
    )


def session_paths() -> Paths:
    cookie = (
        "The `jobtrail_token` cookie: HttpOnly, `SameSite=Strict`, `Path=/api/v1`, `Secure` over "
        "https, `Max-Age` until the token's `exp`."
    )
    return {
        "/api/v1/session": {
            "post": openapi.operation(
                "createSession",
                "Sign in: set the session cookie",
                scope="jobs:read",
                description="Sets the Bearer token of this request as the session cookie, which "
                "every `/api/v1` route then accepts when a request has no Authorization header, "
                "so that a page never keeps the token itself. The Bearer header only: a cookie "
                "never renews itself. " + cookie,
                responses={"204": {"description": "The cookie is set (`Set-Cookie`)."}},
                auth=openapi.BEARER_ONLY,
            ),
            "get": openapi.operation(
                "getSession",
                "Who is signed in",
                scope="jobs:read",
                description="The subject, scopes and expiry of the token of the session cookie "
                "(or of the Bearer header, which wins), for a page to show without reading the "
                "token. Signed out, or the token expired: 401. Answered with "
                "`Cache-Control: no-store`.",
                responses={"200": openapi.json_response("Session", "Who is signed in.")},
            ),
            "delete": openapi.operation(
                "deleteSession",
                "Sign out: clear the session cookie",
                scope="jobs:read",
                description="Clears the cookie (an expired `Set-Cookie`). Open streams stay open "
                "until their token expires.",
                responses={"204": {"description": "The cookie is cleared."}},
            ),
        }
    }


def schemas() -> dict[str, Schema]:
    scopes = s.enum(auth.SCOPES, "A scope the token holds (`admin`: every scope).")
    return {
        "Session": s.obj(
            {
                "sub": s.string("The user: the `sub` claim, the owner of the jobs it creates."),
                "scopes": {"type": "array", "items": scopes, "uniqueItems": True},
                "expires_at": s.timestamp("When the token (and so the session) expires."),
            },
            required=("sub", "scopes", "expires_at"),
        )
    }
