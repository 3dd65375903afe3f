from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import jsonschema_rs
import pytest
import schemathesis
from schemathesis.core.result import Ok

from domain import job as domain_job
from domain import retry, states
from projections import documents
from service.edge import api_errors as errors
from service.openapi import schemas as openapi_schemas
from service.openapi.document import document

METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
EXPECTED_ROUTES = {
    ("POST", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs/{id}"),
    ("PATCH", "/api/v1/jobs/{id}"),
    ("DELETE", "/api/v1/jobs/{id}"),
    ("POST", "/api/v1/jobs/{id}/cancel"),
    ("POST", "/api/v1/cancel"),
    ("POST", "/api/v1/jobs/{id}/replay"),
    ("GET", "/api/v1/jobs/{id}/events"),
    ("GET", "/api/v1/events"),
    ("POST", "/api/v1/workers/claim"),
    *[
        ("POST", f"/api/v1/jobs/{{id}}/{action}")
        for action in ("heartbeat", "progress", "logs", "succeed", "fail", "cancelled")
    ],
    ("POST", "/api/v1/session"),
    ("GET", "/api/v1/session"),
    ("DELETE", "/api/v1/session"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/"),
    ("GET", "/jobs/{id}"),
    ("GET", "/static/{name}"),
}
ERROR_STATUSES = ("400", "401", "403", "404", "409", "413", "415", "500")
NOW = datetime(2026, 11, 23, 17, 43, 41, 123000, tzinfo=UTC)


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def walk(node: Any, where: str = "#") -> Iterator[tuple[str, Any]]:
    yield where, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{where}/{index}")


def resolve(root: dict[str, Any], pointer: str) -> Any:
    node: Any = root
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def validator(component: str) -> jsonschema_rs.Validator:
    root = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document()["components"],
        "$ref": f"#/components/schemas/{component}",
    }
    return jsonschema_rs.validator_for(root, validate_formats=True)


def test_document_is_valid_openapi_3_1() -> None:
    schema = schemathesis.openapi.from_dict(document())
    schema.validate()
    loaded = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok)
        loaded.append(result.ok())
    assert {(operation.method.upper(), operation.path) for operation in loaded} == EXPECTED_ROUTES
    assert list(schema.iter_schema_warnings()) == []


def test_document_is_a_fresh_dict_each_time() -> None:
    first = document()
    pristine = copy.deepcopy(first)
    first["paths"].clear()
    assert document() == pristine


def test_routes_are_exactly_the_documented_ones() -> None:
    assert {(method, path) for method, path, _ in operations()} == EXPECTED_ROUTES


def test_every_ref_resolves() -> None:
    root = document()
    refs = [
        (where, node["$ref"])
        for where, node in walk(root)
        if isinstance(node, dict) and isinstance(node.get("$ref"), str)
    ]
    assert refs
    for where, ref in refs:
        assert ref.startswith("#/components/"), where
        assert isinstance(resolve(root, ref), dict), f"{where}: {ref}"


def test_every_component_is_used() -> None:
    root = document()
    used = {node["$ref"] for _, node in walk(root) if isinstance(node, dict) and "$ref" in node}
    for kind, components in root["components"].items():
        if kind == "securitySchemes":
            continue
        for name in components:
            assert f"#/components/{kind}/{name}" in used, f"{kind}/{name} is never used"


def test_every_operation_has_an_id_a_summary_a_tag_and_responses() -> None:
    ids = []
    tags = {tag["name"] for tag in document()["tags"]}
    for method, path, operation in operations():
        label = f"{method} {path}"
        assert operation.get("operationId"), label
        assert operation.get("summary"), label
        assert operation.get("description"), label
        assert operation.get("responses"), label
        assert set(operation["tags"]) <= tags, label
        ids.append(operation["operationId"])
    assert len(ids) == len(set(ids))


def test_api_operations_need_a_bearer_token_or_the_cookie_and_list_their_errors() -> None:
    for method, path, operation in operations():
        if not path.startswith("/api/v1/"):
            continue
        label = f"{method} {path}"
        assert {"bearerAuth": []} in operation["security"], label
        # Every route takes the session cookie, except the one that sets it.
        cookie = {"tokenCookie": []} in operation["security"]
        assert cookie == ((method, path) != ("POST", "/api/v1/session")), label
        assert operation["x-required-scope"] in {"jobs:read", "jobs:write", "worker"}, label
        assert {"401", "403", "500"} <= operation["responses"].keys(), label
        if "{id}" in path:
            assert "404" in operation["responses"], label
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= operation["responses"].keys(), label


def test_operations_routes_need_no_auth() -> None:
    for method, path, operation in operations():
        if not path.startswith("/api/"):
            assert operation["security"] == [], f"{method} {path}"


def test_error_responses_share_the_error_schema() -> None:
    responses = document()["components"]["responses"]
    by_status = {}
    for _, path, operation in operations():
        for status, response in operation["responses"].items():
            if status in ERROR_STATUSES:
                assert response["$ref"].startswith("#/components/responses/"), path
                by_status[status] = response["$ref"].rsplit("/", 1)[1]
    assert sorted(by_status) == sorted(ERROR_STATUSES)
    for name in by_status.values():
        schema = responses[name]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}
    assert "WWW-Authenticate" in responses[by_status["401"]]["headers"]


def test_schemas_are_valid_json_schema_2020_12() -> None:
    root = document()
    schemas = [
        node["schema"] for _, node in walk(root) if isinstance(node, dict) and "schema" in node
    ]
    schemas += list(root["components"]["schemas"].values())
    for schema in schemas:
        jsonschema_rs.meta.validate(
            {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
        )


def test_event_routes_document_json_pages_and_the_live_stream() -> None:
    for path in ("/api/v1/jobs/{id}/events", "/api/v1/events"):
        operation = document()["paths"][path]["get"]
        content = operation["responses"]["200"]["content"]
        assert set(content) == {"application/json", "text/event-stream"}
        names = {p["$ref"].rsplit("/", 1)[-1] for p in operation["parameters"]}
        assert {"Stream", "LastEventId"} <= names
        assert {name for scheme in operation["security"] for name in scheme} == {
            "bearerAuth",
            "tokenCookie",
            "accessToken",
        }


def test_enums_match_the_domain() -> None:
    event_kinds = {
        cls.kind
        for cls in vars(domain_job.Job).values()
        if isinstance(getattr(cls, "kind", None), str)
    } - {""}
    assert set(openapi_schemas.JOB_STATUSES) == {state.value for state in states.JobState}
    assert openapi_schemas.PRIORITIES == domain_job.PRIORITIES
    assert openapi_schemas.LOG_LEVELS == domain_job.LOG_LEVELS
    assert set(openapi_schemas.EVENT_TYPES) == event_kinds


def test_error_codes_cover_the_api_errors() -> None:
    codes = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.ApiError)
    }
    assert codes <= set(openapi_schemas.ERROR_CODES)
    error = {"error": {"code": "not_found", "message": "Job not found.", "details": {}}}
    assert validator("Error").is_valid(error)
    assert not validator("Error").is_valid(
        {"error": {"code": "teapot", "message": "", "details": {}}}
    )


def rendered_job_and_events(job: domain_job.Job) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    events = []
    for position, event in enumerate(job.collect_events(), start=1):
        assert isinstance(event, domain_job.Job.Event | domain_job.Job.Created)
        events.append(documents.event_document(position, event))
    return documents.job_document(job, last_event_id=len(events)), events


def finished_job() -> domain_job.Job:
    job = domain_job.Job.create(
        job_id=uuid4(), now=NOW, type="video.render", owner="alice", name="Intro", max_attempts=2
    )
    lease = timedelta(seconds=30)
    job.start(worker_id="host-1", lease_token="t", lease_expires_at=NOW + lease, now=NOW)
    job.report_progress({"percent": 75.5, "stage": "rendering", "total": 200}, now=NOW)
    job.log(level="info", message="Searching for footage…", data={"clips": 3}, now=NOW)
    error = {"message": "boom", "code": "render_failed", "details": None}
    job.fail(error=error, retry_allowed=True, now=NOW, policy=retry.RetryPolicy(), jitter=0.5)
    later = NOW + timedelta(hours=1)
    job.start(worker_id="host-1", lease_token="u", lease_expires_at=later + lease, now=later)
    job.succeed(result={"url": "https://example.com/v.mp4"}, result_type="video", now=later)
    job.update({"starred": True, "metadata": {"project_id": "p-42"}}, now=later)
    return job


def batch_parent() -> domain_job.Job:
    job = domain_job.Job.create(
        job_id=uuid4(), now=NOW, type="batch", owner="bob", batch_size=3, run_at=NOW
    )
    job.cancel(reason="no longer needed", now=NOW)
    job.delete(now=NOW)
    return job


@pytest.mark.parametrize("build", [finished_job, batch_parent], ids=["finished", "batch"])
def test_rendered_jobs_and_events_match_their_schemas(build: Callable[[], domain_job.Job]) -> None:
    job, events = rendered_job_and_events(build())
    assert not list(validator("Job").iter_errors(job))
    assert validator("JobWithLogs").is_valid({**job, "logs": events})
    for event in events:
        assert not list(validator("Event").iter_errors(event)), event
    page = {"items": events, "next_after": len(events), "has_more": False}
    assert validator("JobEventPage").is_valid(
        {**page, "job_status": job["status"], "finished": True}
    )
    assert validator("JobPage").is_valid(
        {"items": [job], "total": 1, "offset": None, "limit": 20, "next_cursor": None}
    )


def test_request_bodies_reject_unknown_fields() -> None:
    create = validator("JobCreate")
    assert create.is_valid({"type": "video.render", "run_at": 1732380000000})
    assert not create.is_valid({"type": "video.render", "colour": "red"})
    assert not create.is_valid({"type": "Video Render"})
    assert create.is_valid({"type": "a", "children": [{"type": "b"}]})
    assert not create.is_valid({"type": "a", "children": []})
    assert not create.is_valid({"type": "a", "children": [{"type": "b", "children": []}]})
    assert validator("JobPatch").is_valid({"name": None})
    assert not validator("JobPatch").is_valid({})
    assert not validator("JobPatch").is_valid({"status": "failed"})
