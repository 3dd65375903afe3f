from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt
import pytest

from tests import worker_steps
from tests.support import SECRET, TLS

JOB = "00000000-0000-4000-8000-000000000000"
ROUTES = [
    pytest.param("GET", "/api/v1/jobs", id="list"),
    pytest.param("POST", "/api/v1/jobs", id="create"),
    pytest.param("GET", f"/api/v1/jobs/{JOB}", id="get"),
    pytest.param("PATCH", f"/api/v1/jobs/{JOB}", id="patch"),
    pytest.param("DELETE", f"/api/v1/jobs/{JOB}", id="delete"),
    pytest.param("POST", f"/api/v1/jobs/{JOB}/cancel", id="cancel"),
    pytest.param("POST", f"/api/v1/jobs/{JOB}/replay", id="replay"),
    pytest.param("GET", f"/api/v1/jobs/{JOB}/events", id="job-events"),
    pytest.param("POST", "/api/v1/cancel", id="cancel-newest"),
    pytest.param("GET", "/api/v1/events", id="events"),
]
WRITES = [p for p in ROUTES if p.values[0] != "GET"]
READS = [p for p in ROUTES if p.values[0] == "GET"]
JSON_HEADERS = {"content-type": "application/json"}


@pytest.fixture
def anonymous(shared_server):
    with httpx.Client(verify=TLS, base_url=shared_server.url) as client:
        yield client


@pytest.fixture
def writer(shared_server):
    with shared_server.client("alice") as client:
        yield client


@pytest.fixture
def auditor(shared_server):
    with shared_server.client("root", "admin") as client:
        yield client


def footprint(admin):
    """Everything written so far: the number of live jobs and the ids of all events."""
    events = admin.get("/api/v1/events", params={"limit": 1000}).json()
    return admin.get("/api/v1/jobs").json()["total"], [event["id"] for event in events["items"]]


def token(claims, secret=SECRET, algorithm="HS256"):
    return jwt.encode(claims, secret, algorithm=algorithm)


def claims(**overrides):
    now = int(time.time())
    return {"sub": "alice", "exp": now + 600, "scope": "jobs:read jobs:write"} | overrides


def unsigned(payload):
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)


def assert_unauthorized(response):
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


# Authentication and scopes


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_request_without_authorization_is_unauthorized(anonymous, method, path):
    assert_unauthorized(anonymous.request(method, path))


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer not.a.jwt",
        "Bearer garbage",
        "Bearer a b",
        "Basic YWxpY2U6c2VjcmV0",
        "Token abc",
    ],
)
def test_malformed_authorization_is_unauthorized(anonymous, header):
    assert_unauthorized(anonymous.get("/api/v1/jobs", headers={"Authorization": header}))


@pytest.mark.parametrize(
    "bad_token",
    [
        pytest.param(token(claims(), secret="another-secret-" + "y" * 32), id="wrongly-signed"),
        pytest.param(token(claims(exp=int(time.time()) - 60)), id="expired"),
        pytest.param(token(claims(nbf=int(time.time()) + 600)), id="not-yet-valid"),
        pytest.param(unsigned(claims()), id="alg-none"),
        pytest.param(token({"exp": int(time.time()) + 600}), id="no-sub"),
        pytest.param(token({"sub": "alice"}), id="no-exp"),
        pytest.param(token(claims(sub="")), id="empty-sub"),
        pytest.param(token(claims())[:-4] + "AAAA", id="tampered-signature"),
    ],
)
def test_invalid_token_is_unauthorized(anonymous, bad_token):
    response = anonymous.post(
        "/api/v1/jobs", json={"type": "t"}, headers={"Authorization": f"Bearer {bad_token}"}
    )

    assert_unauthorized(response)


def test_hand_made_valid_token_is_accepted(anonymous):
    response = anonymous.get("/api/v1/jobs", headers={"Authorization": f"Bearer {token(claims())}"})

    assert response.status_code == 200


def test_token_without_scope_claim_reads_and_writes(shared_server, anonymous, auditor):
    headers = {"Authorization": f"Bearer {token({'sub': 'carol', 'exp': claims()['exp']})}"}

    created = anonymous.post("/api/v1/jobs", json={"type": "t"}, headers=headers)

    assert created.status_code == 201
    assert anonymous.get("/api/v1/jobs", headers=headers).json()["total"] == 1
    assert anonymous.delete(created.headers["location"], headers=headers).status_code == 204


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_read_only_token_may_not_write(shared_server, auditor, method, path):
    before = footprint(auditor)
    with shared_server.client("alice", "jobs:read") as reader:
        response = reader.request(method, path, json={"type": "t"} if method != "DELETE" else None)

    assert_error(response, 403, "forbidden")
    assert footprint(auditor) == before


@pytest.mark.parametrize(("method", "path"), READS)
@pytest.mark.parametrize("scopes", ["worker", "jobs:write"])
def test_token_without_jobs_read_may_not_read(shared_server, method, path, scopes):
    with shared_server.client("alice", scopes) as client:
        assert_error(client.request(method, path), 403, "forbidden")


def test_worker_token_may_not_create_jobs(shared_server, auditor):
    before = footprint(auditor)
    with shared_server.client("w-1", "worker") as worker:
        response = worker.post("/api/v1/jobs", json={"type": "t"})

    assert_error(response, 403, "forbidden")
    assert footprint(auditor) == before


def test_admin_token_works_on_every_route(server, alice, admin):
    job = alice.post("/api/v1/jobs", json={"type": "t"}).json()
    worker_steps.start(server, job["id"])
    path = f"/api/v1/jobs/{job['id']}"

    assert admin.get("/api/v1/jobs").json()["total"] == 1
    assert admin.get(path).json()["id"] == job["id"]
    assert admin.get(path, params={"include": "logs", "as_of": 1}).status_code == 200
    assert admin.patch(path, json={"starred": True}).json()["starred"] is True
    assert admin.post(f"{path}/cancel").json()["cancel_requested"] is True
    assert admin.post(f"{path}/replay").status_code == 201
    assert len(admin.get(f"{path}/events").json()["items"]) == 4
    assert admin.get("/api/v1/events").json()["items"]
    own = admin.post("/api/v1/jobs", json={"type": "t"})
    assert own.status_code == 201
    assert own.json()["owner"] == "root"
    assert admin.post("/api/v1/cancel").json()["job"]["id"] == own.json()["id"]
    assert admin.delete(path).status_code == 204


# Routing


@pytest.mark.parametrize(
    "path",
    ["/api/v1/nope", "/api/v1/jobs/x/bogus", "/api/v2/jobs", "/nope", "/api/v1/job"],
)
def test_unknown_route_is_not_found_in_the_error_shape(writer, path):
    assert_error(writer.get(path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/v1/jobs"),
        ("DELETE", "/api/v1/jobs"),
        ("PUT", f"/api/v1/jobs/{JOB}"),
        ("GET", f"/api/v1/jobs/{JOB}/cancel"),
        ("GET", "/api/v1/cancel"),
    ],
)
def test_wrong_method_is_405_in_the_error_shape(writer, method, path):
    response = writer.request(method, path)

    assert response.status_code == 405
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/api/v1/jobs", {"GET", "HEAD", "POST"}),
        (f"/api/v1/jobs/{JOB}", {"GET", "HEAD", "PATCH", "DELETE"}),
    ],
)
def test_wrong_method_answer_lists_every_allowed_method(writer, path, allowed):
    response = writer.put(path)

    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


# Bodies


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("POST", "/api/v1/jobs", id="create"),
        pytest.param("PATCH", f"/api/v1/jobs/{JOB}", id="patch"),
        pytest.param("POST", f"/api/v1/jobs/{JOB}/cancel", id="cancel"),
    ],
)
@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"{", id="truncated"),
        pytest.param(b"type=t", id="form"),
        pytest.param(b"{'type': 't'}", id="single-quotes"),
        pytest.param(b'{"type": "t",}', id="trailing-comma"),
        pytest.param(b'{"type": "t"} {}', id="two-values"),
        pytest.param(b'{"type": NaN}', id="nan"),
        pytest.param(b'{"type": "t", "payload": Infinity}', id="infinity"),
        pytest.param(b'{"type": "t", "payload": [-Infinity]}', id="minus-infinity"),
        pytest.param(b'{"type": "\xff"}', id="not-utf8"),
    ],
)
def test_body_that_is_not_json_is_rejected(writer, auditor, method, path, content):
    before = footprint(auditor)

    response = writer.request(method, path, content=content, headers=JSON_HEADERS)

    assert_error(response, 400, "invalid_request")
    assert "body" in response.json()["error"]["details"]
    assert footprint(auditor) == before


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
        None,
    ],
)
def test_body_that_is_not_declared_json_is_unsupported(writer, auditor, content_type):
    headers = {} if content_type is None else {"content-type": content_type}
    before = footprint(auditor)

    response = writer.post("/api/v1/jobs", content=b'{"type": "t"}', headers=headers)

    assert_error(response, 415, "unsupported_media_type")
    assert footprint(auditor) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("PATCH", "", id="patch"),
        pytest.param("POST", "/cancel", id="cancel"),
    ],
)
def test_text_body_is_unsupported_on_every_route_that_reads_one(alice, method, path):
    job = alice.post("/api/v1/jobs", json={"type": "t"}).json()

    response = alice.request(
        method,
        f"/api/v1/jobs/{job['id']}{path}",
        content=b'{"name": "x"}',
        headers={"content-type": "text/plain"},
    )

    assert_error(response, 415, "unsupported_media_type")
    assert alice.get(f"/api/v1/jobs/{job['id']}").json() == job


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"],
)
def test_json_media_type_variants_are_accepted(alice, content_type):
    response = alice.post(
        "/api/v1/jobs", content=b'{"type": "t"}', headers={"content-type": content_type}
    )

    assert response.status_code == 201


def test_body_over_one_mebibyte_is_too_large_and_writes_nothing(writer, auditor):
    before = footprint(auditor)
    body = json.dumps({"type": "t", "payload": "x" * (1024 * 1024)}).encode()

    response = writer.post("/api/v1/jobs", content=body, headers=JSON_HEADERS)

    assert_error(response, 413, "payload_too_large")
    assert footprint(auditor) == before


def test_chunked_body_over_one_mebibyte_is_too_large_and_writes_nothing(writer, auditor):
    before = footprint(auditor)

    def chunks():
        yield b'{"type": "t", "payload": "'
        for _ in range(17):
            yield b"x" * 65536
        yield b'"}'

    response = writer.post("/api/v1/jobs", content=chunks(), headers=JSON_HEADERS)

    assert_error(response, 413, "payload_too_large")
    assert footprint(auditor) == before


def test_body_of_exactly_one_mebibyte_is_accepted(alice):
    head, tail = b'{"type": "t", "name": "n", "payload": "', b'"}'
    body = head + b"x" * (1024 * 1024 - len(head) - len(tail)) + tail
    assert len(body) == 1024 * 1024

    response = alice.post("/api/v1/jobs", content=body, headers=JSON_HEADERS)

    # The payload itself is over its own 256 KiB limit: a 400, not a 413.
    assert_error(response, 400, "invalid_request")
    assert set(response.json()["error"]["details"]) == {"payload"}


@pytest.mark.parametrize("field", ["payload", "metadata"])
def test_field_over_256_kib_is_rejected_naming_it_and_writes_nothing(writer, auditor, field):
    before = footprint(auditor)
    value = {"blob": "x" * (256 * 1024)}

    response = writer.post("/api/v1/jobs", json={"type": "t", field: value})

    assert_error(response, 400, "invalid_request")
    assert field in response.json()["error"]["details"]
    assert footprint(auditor) == before


def test_payload_of_256_kib_is_accepted(alice):
    payload = "x" * (256 * 1024 - 2)  # as JSON, with its quotes: exactly 256 KiB

    response = alice.post("/api/v1/jobs", json={"type": "t", "payload": payload})

    assert response.status_code == 201


def test_patch_metadata_over_256_kib_is_rejected(alice):
    job = alice.post("/api/v1/jobs", json={"type": "t"}).json()

    response = alice.patch(
        f"/api/v1/jobs/{job['id']}", json={"metadata": {"blob": "x" * (256 * 1024)}}
    )

    assert_error(response, 400, "invalid_request")
    assert "metadata" in response.json()["error"]["details"]
    assert alice.get(f"/api/v1/jobs/{job['id']}").json() == job


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"type": "t", "payload": {"x": "\\ud800"}}', id="in-payload"),
        pytest.param(b'{"type": "t", "name": "\\udfff"}', id="in-name"),
    ],
)
def test_lone_surrogate_escape_is_rejected(shared_server, writer, auditor, content):
    before = footprint(auditor)

    response = writer.post("/api/v1/jobs", content=content, headers=JSON_HEADERS)

    assert_error(response, 400, "invalid_request")
    assert footprint(auditor) == before


def test_paired_surrogate_escape_is_a_valid_character(alice):
    response = alice.post(
        "/api/v1/jobs", content=b'{"type": "t", "name": "\\ud83d\\ude00"}', headers=JSON_HEADERS
    )

    assert response.status_code == 201
    assert response.json()["name"] == "\U0001f600"


# No traceback, ever


def test_no_error_response_carries_a_traceback(shared_server):
    surrogate = b'{"type": "t", "payload": "\\ud800"}'
    tricky = base64.urlsafe_b64encode(b'{"k": [1, 2]}').decode()
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/api/v1/jobs", {"params": {"limit": "--5"}}),
        ("GET", "/api/v1/jobs", {"params": {"cursor": tricky}}),
        ("GET", f"/api/v1/jobs/{JOB}", {"params": {"as_of": "\u00b2"}}),
        ("POST", "/api/v1/jobs", {"content": surrogate, "headers": JSON_HEADERS}),
        ("POST", "/api/v1/jobs", {"content": b"{", "headers": JSON_HEADERS}),
        ("POST", "/api/v1/jobs", {"content": b"{}", "headers": {"content-type": "text/plain"}}),
        ("PUT", "/api/v1/jobs", {}),
        ("GET", "/api/v1/nope", {}),
        ("GET", "/api/v1/jobs/not-a-uuid", {}),
        ("POST", f"/api/v1/jobs/{JOB}/cancel", {}),
    ]
    answers = []
    for method, path, options in requests:
        with shared_server.client("alice") as client:  # a 500 closes its connection
            answers.append(client.request(method, path, **options))

    for response in answers:
        assert response.status_code >= 400
        assert set(response.json()) == {"error"}
        for marker in ("Traceback", 'File "', ".py", "Error:"):
            assert marker not in response.text
