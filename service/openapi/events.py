"""The streaming part of the served OpenAPI document: the events routes (JSON pages and their
Server-Sent Events form) and the session cookie that browsers' `EventSource` needs."""

from __future__ import annotations

from typing import Any

from service import settings
from service.openapi import builders as openapi
from service.openapi import schemas as s

Schema = dict[str, Any]
Paths = dict[str, dict[str, Schema]]
SSE = "text/event-stream"
_STREAMS = settings.Streams()  # the document states the defaults
# API.md: only the two SSE forms also read the cookie or the query token.
STREAM_AUTH = ("bearerAuth", "tokenCookie", "accessToken")
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
        " Besides the Bearer header, the SSE form (only) takes the token from the "
        "`jobtrail_token` cookie or the `access_token` query parameter."
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
                "Set the token cookie",
                scope="jobs:read",
                description="Sets the Bearer token of this request as the cookie that the SSE "
                "forms of the events routes accept (and no other route). " + cookie,
                responses={"204": {"description": "The cookie is set (`Set-Cookie`)."}},
            ),
            "delete": openapi.operation(
                "deleteSession",
                "Clear the token cookie",
                scope="jobs:read",
                description="Clears the cookie (an expired `Set-Cookie`). Open streams stay open "
                "until their token expires.",
                responses={"204": {"description": "The cookie is cleared."}},
            ),
        }
    }
