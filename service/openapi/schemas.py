"""The component schemas of the served OpenAPI document: API.md's objects as JSON Schema 2020-12."""

from __future__ import annotations

from typing import Any

from domain import job as domain_job
from domain.states import JobState
from projections import jobs_view
from service import errors
from service.contract import fields, timestamps
from service.contract import jobs as validation
from service.edge import bodies, params

JOB_STATUSES = tuple(state.value for state in JobState)
PRIORITIES = domain_job.PRIORITIES
EVENT_TYPES = domain_job.EVENT_KINDS
LOG_LEVELS = domain_job.LOG_LEVELS
# API.md's codes, plus the two that service/edge/api_errors.py gives the framework's 405 and 406.
ERROR_CODES = tuple(
    "invalid_request unauthorized forbidden not_found method_not_allowed not_acceptable conflict"
    " lease_lost request_timeout payload_too_large unsupported_media_type"
    " request_header_fields_too_large rate_limited internal unavailable".split()
)
SORTS = tuple(jobs_view.SORT_COLUMNS)
JOB_TYPE_PATTERN = f"^{validation.TYPE_PATTERN.pattern}$"
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"

Schema = dict[str, Any]


def ref(name: str, kind: str = "schemas") -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def nullable(schema: Schema) -> Schema:
    if "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    widened = {**schema, "type": [schema["type"], "null"]}
    if "enum" in schema:
        widened["enum"] = [*schema["enum"], None]
    return widened


def without_nul(schema: Schema) -> Schema:
    """A string schema that also refuses U+0000 (one pattern per schema: a string that has
    one, an enum or a format keeps its own, which admit no NUL anyway)."""
    if schema.get("type") != "string" or {"pattern", "enum", "format"} & schema.keys():
        return schema
    return {**schema, "pattern": fields.NO_NUL_PATTERN}


# A filter's value must hold something besides blanks: " " or a tab alone is a 400 (the
# server strips spaces and tabs around each comma-separated value).
NON_BLANK_PATTERN = "^[^\\u0000]*[^\\u0000 \\t][^\\u0000]*$"


def _non_blank(schema: Schema) -> Schema:
    if schema.get("pattern") != fields.NO_NUL_PATTERN:
        return schema  # an enum, a format or a pattern of its own: never blank
    return {**schema, "pattern": NON_BLANK_PATTERN}


def _described(schema: Schema, description: str) -> Schema:
    return {**schema, "description": description} if description else schema


def string(description: str = "", **limits: Any) -> Schema:
    return _described({"type": "string", **limits}, description)


MAX_EVENT_ID = bodies.MAX_INTEGER  # SQLite's largest integer


def integer(description: str = "", minimum: int = 0, **limits: Any) -> Schema:
    return _described({"type": "integer", "minimum": minimum, **limits}, description)


def enum(values: tuple[str, ...], description: str = "", **extra: Any) -> Schema:
    return _described({"type": "string", "enum": list(values), **extra}, description)


def any_json(description: str) -> Schema:
    return {**ref("JsonValue"), "description": f"Any JSON value. {description}".strip()}


def _json_value() -> Schema:
    # What the store and the renderers can hold (service/edge/bodies.py checks it on every body):
    # finite numbers and 64-bit integers. Python's json (and so the API) tells an integer from
    # a floating-point number by its spelling, JSON Schema by its value: `1e19` is a float to
    # the API, stored and served as written, but a whole number past 2^63 to a validator. So
    # the schema admits every finite number past the 64-bit range (which, as a double, is
    # whole), and the description says that plain digits there are refused. The nesting limit
    # (64) is stated in words.
    member = ref("JsonValue")
    return {
        "description": (
            "Any JSON value whose numbers are finite and whose integers lie in -2^63..2^63-1, "
            f"whose strings and keys are valid Unicode, nested at most {bodies.MAX_DEPTH} levels. "
            "A number past that range is a floating-point number, written with a fraction or "
            "an exponent (`1e19`, `1.5e300`): written as plain digits it is an integer, and "
            "refused."
        ),
        "anyOf": [
            {"type": ["null", "boolean", "string"]},
            {"type": "integer", "minimum": bodies.MIN_INTEGER, "maximum": bodies.MAX_INTEGER},
            {"type": "number", "not": {"type": "integer"}},
            {
                "type": "number",
                "not": {"minimum": bodies.MIN_INTEGER, "maximum": bodies.MAX_INTEGER},
            },
            {"type": "array", "items": member},
            {"type": "object", "additionalProperties": member},
        ],
    }


def timestamp(description: str) -> Schema:
    return {
        "type": "string",
        "format": "date-time",
        "pattern": TIMESTAMP_PATTERN,
        "description": f"{description} RFC 3339 UTC with milliseconds: `2026-11-23T17:43:41.123Z`.",
        "examples": ["2026-11-23T17:43:41.123Z"],
    }


def time_input(description: str) -> Schema:
    return timestamps.schema(description)


def job_type(description: str = "") -> Schema:
    return string(description, pattern=JOB_TYPE_PATTERN, examples=["video.render"])


def uuid(description: str = "") -> Schema:
    return string(description, format="uuid")


def obj(properties: Schema, *, required: tuple[str, ...] = (), description: str = "") -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    return schema


def free_object(description: str) -> Schema:
    return {"type": "object", "additionalProperties": ref("JsonValue"), "description": description}


def _progress() -> Schema:
    count = "A non-negative counter."
    return obj(
        {
            "percent": nullable({"type": "number", "minimum": 0, "maximum": 100}),
            "stage": nullable(string("The current stage's name.")),
            "message": nullable(string("A human-readable status line.")),
            "total": nullable(integer(f"{count} Items to process.")),
            "completed": nullable(integer(f"{count} Items done.")),
            "failed": nullable(integer(f"{count} Items that failed.")),
        },
        description="The job's progress: every field is optional and may be null. A batch "
        "parent's counters aggregate its children.",
    )


def _children() -> Schema:
    states = ("total", "pending", "running", "succeeded", "failed", "cancelled")
    return obj(
        {s: integer("In the batch." if s == "total" else f"Children {s}.") for s in states},
        required=states,
        description="A batch parent's children, counted by status.",
    )


def _job_error() -> Schema:
    return obj(
        {
            "message": string("What went wrong."),
            "code": nullable(string("A machine-readable code, such as `lease_expired`.")),
            "details": any_json("Further structured details, or null."),
        },
        required=("message",),
        description="Why the last attempt failed. A lease that expired without renewal "
        "counts as a failed attempt with code `lease_expired`.",
    )


def _job() -> Schema:
    properties: Schema = {
        "id": uuid("The job's id."),
        "type": job_type("The job's type."),
        "name": nullable(string("A display name.", maxLength=validation.MAX_NAME)),
        "category": nullable(
            string("A free-form grouping.", minLength=1, maxLength=validation.MAX_CATEGORY)
        ),
        "status": enum(
            JOB_STATUSES,
            "`pending` → `running` → one of `succeeded`, `failed`, `cancelled` (terminal). A "
            "failed attempt with attempts left goes back to `pending` (event `retry_scheduled`).",
        ),
        "priority": enum(PRIORITIES, "Claim order: high before normal before low."),
        "owner": string("The `sub` of the token that created the job."),
        "parent_id": nullable(uuid("The batch parent's id, for a child job.")),
        "replayed_from": nullable(uuid("The original job's id, for a replay.")),
        "payload": any_json("The input given at creation."),
        "metadata": free_object("Free-form client data."),
        "starred": {"type": "boolean"},
        "progress": ref("Progress"),
        "children": nullable(ref("Children")),
        "cancel_requested": {
            "type": "boolean",
            "description": "True once a cancel of the running job was asked for; the worker "
            "stops at its next checkpoint.",
        },
        "result": any_json("The result given by the worker on success, or null."),
        "result_type": nullable(string("The result's type, as given by the worker.")),
        "error": nullable(ref("JobError")),
        "attempt": integer("The number of attempts started so far (0 before the first claim)."),
        "max_attempts": integer(
            "Attempts allowed in all.", minimum=1, maximum=validation.MAX_ATTEMPTS
        ),
        "run_at": nullable(timestamp("The job is not claimed before this time.")),
        "version": integer("The number of events in the job's stream.", minimum=1),
        "last_event_id": integer("The id of the job's newest event.", minimum=1),
        "created_at": timestamp("When the job was created."),
        "updated_at": timestamp("When the job's newest event was recorded."),
        "started_at": nullable(timestamp("When the latest attempt started.")),
        "finished_at": nullable(timestamp("When the job reached a terminal status.")),
    }
    return obj(properties, required=tuple(properties), description="A job.")


def _job_with_logs() -> Schema:
    logs = "With `include=logs` only: the job's newest 100 log events, oldest first."
    return {
        "allOf": [ref("Job")],
        "properties": {"logs": {"type": "array", "items": ref("Event"), "description": logs}},
        "description": "A job, with its recent log events when asked for.",
    }


def _event() -> Schema:
    properties: Schema = {
        "id": integer(
            "Global, strictly increasing in commit order, never reused: the cursor.", minimum=1
        ),
        "job_id": uuid("The job the event belongs to."),
        "seq": integer("1-based position in the job's own stream.", minimum=1),
        "type": enum(EVENT_TYPES, "What happened."),
        "timestamp": timestamp("When the event was recorded."),
        "level": nullable(enum(LOG_LEVELS, "The log level, for `log` events; null otherwise.")),
        "message": nullable(string("The log line, for `log` events; null otherwise.")),
        "data": any_json(
            "The type's fields: the progress fields, the log's data, the result, the error, "
            "the changed fields of `updated`, …"
        ),
    }
    return obj(properties, required=tuple(properties), description="One event of a job's stream.")


def _error() -> Schema:
    body = obj(
        {
            "code": enum(ERROR_CODES, "Matches the HTTP status: see the error responses."),
            "message": string("A human-readable message. Never a traceback."),
            "details": free_object(
                "For a 400, names the offending fields or parameters; for a 503, `reason` "
                "says what keeps the store from serving (as /readyz's `reason`)."
            ),
        },
        required=("code", "message", "details"),
    )
    return obj({"error": body}, required=("error",), description="Every error has this shape.")


def _job_page() -> Schema:
    return obj(
        {
            "items": {"type": "array", "items": ref("Job")},
            "total": integer("Jobs matching the filters, ignoring paging."),
            "offset": nullable(integer("The page's offset; null when paging by cursor.")),
            "limit": integer("The page size asked for.", minimum=1, maximum=100),
            "next_cursor": nullable(
                string("Pass as `cursor` for the next page; null on the last.")
            ),
        },
        required=("items", "total", "offset", "limit", "next_cursor"),
        description="One page of jobs.",
    )


def _event_page() -> Schema:
    return obj(
        {
            "items": {"type": "array", "items": ref("Event")},
            "next_after": integer("The id of the last item, or `after` when there is none."),
            "has_more": {"type": "boolean", "description": "More events follow `next_after`."},
        },
        required=("items", "next_after", "has_more"),
        description="One page of events, in id order.",
    )


def _job_event_page() -> Schema:
    finished = (
        "True when the job is terminal or deleted and no events remain after the page: exactly "
        "when its stream would send `end`."
    )
    return {
        "allOf": [ref("EventPage")],
        "properties": {
            "job_status": enum(JOB_STATUSES, "The job's current status."),
            "finished": {"type": "boolean", "description": finished},
        },
        "required": ["job_status", "finished"],
        "description": "One page of a job's events, with the job's status.",
    }


def _readiness() -> Schema:
    lag = "Events recorded but not yet in the read models; null when the store is unreadable."
    reason = (
        "With `unavailable` only: what is wrong, in a fixed vocabulary (also a 503's "
        "`details.reason`). Write faults are known once a write has met one; each /readyz "
        "then tries a write that changes nothing, and the reason goes once one commits."
    )
    return obj(
        {
            "status": enum(
                ("ok", "unavailable"),
                "`unavailable` (with 503) when the store cannot be read or cannot take writes.",
            ),
            "reason": enum(tuple(fault.value for fault in errors.Fault), reason),
            "projection_lag": nullable(integer(lag)),
            "last_event_id": nullable(integer("The newest event id in the store.")),
        },
        required=("status", "projection_lag"),
    )


def schemas() -> dict[str, Schema]:
    return {
        "Job": _job(),
        "JobWithLogs": _job_with_logs(),
        "Progress": _progress(),
        "Children": _children(),
        "JobError": _job_error(),
        "Event": _event(),
        "Error": _error(),
        # The request bodies: from the tables that validate them.
        "JobCreate": fields.schema(validation.JOB_CREATE),
        "JobCreateChild": fields.schema(validation.JOB_CHILD),
        "JobPatch": fields.schema(validation.JOB_PATCH),
        "CancelRequest": fields.schema(validation.CANCEL),
        "CancelResult": obj({"job": ref("Job")}, required=("job",)),
        "JobPage": _job_page(),
        "EventPage": _event_page(),
        "JobEventPage": _job_event_page(),
        "Health": obj({"status": enum(("ok",), "The process is alive.")}, required=("status",)),
        "Readiness": _readiness(),
        "JsonValue": _json_value(),
    }


def _query(name: str, description: str, schema: Schema, *, many: bool = False) -> Schema:
    return _param("query", name, description, schema, many=many)


def _param(
    where: str, name: str, description: str, schema: Schema, *, many: bool = False
) -> Schema:
    if where == "query":
        schema = without_nul(schema)
    parameter: Schema = {"name": name, "in": where, "description": description, "schema": schema}
    if where == "path":
        parameter["required"] = True
    if many:
        schema = _non_blank(schema)
        more = (
            " Repeat the parameter or comma-separate values (`a,b`) for several, at most"
            f" {params.MAX_VALUES} distinct ones (→ 400); any matches."
        )
        parameter |= {"style": "form", "explode": True, "description": description + more}
        parameter["schema"] = {
            "type": "array",
            "items": schema,
            "minItems": 1,
            # No maxItems: a value given twice counts once, so no count of items is the limit.
        }
    return parameter


def parameters() -> dict[str, Schema]:
    sort = (
        "`created_at` (default), `updated_at`, `finished_at` or `priority`. Ties are broken by "
        "creation order, in the direction of `order`. `finished_at` puts unfinished jobs last "
        "in `desc` order and first in `asc`; `priority` orders by priority, then creation time."
    )
    cursor = (
        "The opaque `next_cursor` of the previous page. Not with `offset` (→ 400). It works only "
        "with the sort, order and filters that produced it, for the caller it was made for "
        "(else 400); `limit` may change."
    )
    owner = (
        "Owner (`sub`). For `admin` only: everyone else only ever sees their own jobs, and a "
        "non-admin asking for another owner gets an empty page, not an error."
    )
    after = "Start after this event id (exclusive). Default 0: from the beginning."
    last_event_id = (
        "Resume after this event id (what an SSE reconnect sends). Wins over `after`, in both "
        "forms; malformed → 400, blank → ignored."
    )
    return {
        "JobId": _param("path", "id", "The job's id. A malformed id → 404.", uuid("A job id.")),
        "IdempotencyKey": _param(
            "header",
            "Idempotency-Key",
            "The same key from the same owner with the same body returns the original job (200, "
            "`Idempotent-Replayed: true`) and creates nothing. Keys are scoped per owner. The "
            "same key with a different body, or a key whose job was since deleted → 409.",
            {"type": "string", "minLength": 1, "maxLength": validation.MAX_IDEMPOTENCY_KEY},
        ),
        "Limit": _query("limit", "Page size.", integer(minimum=1, maximum=100, default=20)),
        "Offset": _query(
            "offset",
            "Jobs to skip (default 0). Not with `cursor`.",
            integer(maximum=bodies.MAX_INTEGER),
        ),
        "Cursor": _query("cursor", cursor, {"type": "string", "minLength": 1}),
        "Sort": _query("sort", sort, enum(SORTS, default="created_at")),
        "Order": _query(
            "order", "`desc` (default) or `asc`.", enum(("desc", "asc"), default="desc")
        ),
        "TypeFilter": _query("type", "Job type.", job_type(), many=True),
        "StatusFilter": _query("status", "Status.", enum(JOB_STATUSES), many=True),
        "PriorityFilter": _query("priority", "Priority.", enum(PRIORITIES), many=True),
        "CategoryFilter": _query(
            "category",
            "Category.",
            string(minLength=1, maxLength=validation.MAX_CATEGORY),
            many=True,
        ),
        "OwnerFilter": _query("owner", owner, string(minLength=1, maxLength=256), many=True),
        "ParentIdFilter": _query("parent_id", "Batch parent.", uuid(), many=True),
        "FinishedFilter": _query(
            "finished", "`true`: terminal jobs; `false`: the others.", {"type": "boolean"}
        ),
        "StarredFilter": _query("starred", "Starred or not.", {"type": "boolean"}),
        "ResultTypeFilter": _query(
            "result_type", "Result type.", string(minLength=1, maxLength=256), many=True
        ),
        "CreatedFrom": _query("created_from", "Inclusive.", time_input("Created at or after.")),
        "CreatedTo": _query("created_to", "Exclusive.", time_input("Created before.")),
        "Include": _query(
            "include",
            "`logs` adds `logs`: the job's newest 100 log events, oldest first.",
            enum(("logs",)),
        ),
        "AsOf": _query(
            "as_of",
            "The job as it was after its event `seq` N. Beyond the job's `version` → 400.",
            integer(minimum=1, maximum=bodies.MAX_INTEGER),
        ),
        "After": _query("after", after, integer(default=0, maximum=MAX_EVENT_ID)),
        "EventLimit": _query(
            "limit",
            "Page size (JSON form).",
            integer(minimum=1, maximum=1000, default=100),
        ),
        "Stream": _query(
            "stream",
            "`true`: the SSE form, as with `Accept: text/event-stream`.",
            {"type": "boolean", "default": False},
        ),
        "LastEventId": _param(
            "header", "Last-Event-ID", last_event_id, integer(maximum=MAX_EVENT_ID)
        ),
        "EventJobIdFilter": _query("job_id", "Job id.", uuid(), many=True),
        "EventTypeFilter": _query("type", "Event type.", enum(EVENT_TYPES), many=True),
    }
