"""Issue 7, over real HTTP, the first defect: values JSON allows but the store cannot hold,
which failed every command of the writer's group. Now, on every route that reads a body, such
a value is a 400 naming the field it is in, and nothing is written."""

from __future__ import annotations

import json

import pytest

from tests.service.edge.hostile import (
    FINITE,
    INT64,
    JSON_HEADERS,
    MAX_INT64,
    TOO_DEEP,
    UNICODE,
    assert_error,
    assert_names,
    footprint,
    nest,
    running_job,
)
from tests.support import claim, create

pytestmark = pytest.mark.backends("sqlite", "postgres")

# Module-scoped here, not in conftest.py: there they would replace the fresh-server `alice` and
# `admin` of every other test of the package. `worker` is edge/conftest.py's.


@pytest.fixture(scope="module")
def admin(shared_server):
    with shared_server.client("root", "admin") as client:
        yield client


@pytest.fixture(scope="module")
def alice(shared_server):
    with shared_server.client("alice") as client:
        yield client


CREATE_POISON = [
    pytest.param(r'{"type": "t", "payload": {"x": 1e400}}', "payload.x", FINITE, id="inf"),
    pytest.param(r'{"type": "t", "payload": {"x": -1e400}}', "payload.x", FINITE, id="-inf"),
    pytest.param(r'{"type": "t", "payload": 1e400}', "payload", FINITE, id="inf-payload"),
    pytest.param(
        r'{"type": "t", "payload": {"x": 1' + "0" * 400 + ".5}}",
        "payload.x",
        FINITE,
        id="inf-spelt-in-digits",
    ),
    pytest.param(
        r'{"type": "t", "metadata": {"a": [0, 1, 1e400]}}',
        "metadata.a[2]",
        FINITE,
        id="inf-in-metadata-list",
    ),
    pytest.param(
        r'{"type": "t", "children": [{"type": "c"}, {"type": "c", "payload": {"x": 1e400}}]}',
        "children[1].payload.x",
        FINITE,
        id="inf-in-child-payload",
    ),
    pytest.param(
        r'{"type": "t", "children": [{"type": "c", "metadata": {"m": "\ud800"}}]}',
        "children[0].metadata.m",
        UNICODE,
        id="surrogate-in-child-metadata",
    ),
    pytest.param(
        r'{"type": "t", "payload": {"x": 9223372036854775808}}',
        "payload.x",
        INT64,
        id="int-just-over-64-bits",
    ),
    pytest.param(
        r'{"type": "t", "payload": {"x": -9223372036854775809}}',
        "payload.x",
        INT64,
        id="int-just-under-64-bits",
    ),
    pytest.param(
        r'{"type": "t", "payload": [' + "7" * 400 + "]}",
        "payload[0]",
        INT64,
        id="int-of-400-digits",
    ),
    pytest.param(
        r'{"type": "t", "payload": {"x": "\ud800"}}', "payload.x", UNICODE, id="lone-high"
    ),
    pytest.param(r'{"type": "t", "name": "ok\udfff"}', "name", UNICODE, id="lone-low-in-name"),
    pytest.param(
        r'{"type": "t", "metadata": {"ok": {"\ud800": 1}}}',
        "metadata.ok",
        UNICODE,
        id="surrogate-key-names-its-object",
    ),
    pytest.param(
        r'{"type": "t", "payload": ' + nest(64) + "}",
        "payload" + "[0]" * 63,
        TOO_DEEP,
        id="65-levels",
    ),
    pytest.param(r"[1e400]", "body[0]", FINITE, id="non-object-body-root-is-body"),
    pytest.param(r'"\udc00"', "body", UNICODE, id="string-body"),
]


@pytest.mark.parametrize(("body", "path", "problem"), CREATE_POISON)
def test_create_with_a_value_the_store_cannot_hold_is_400_naming_it(
    alice, admin, body, path, problem
):
    before = footprint(admin)

    response = alice.post("/api/v1/jobs", content=body.encode(), headers=JSON_HEADERS)

    assert_names(response, path, problem)
    assert footprint(admin) == before


def test_values_at_the_limits_are_stored_and_served_unchanged(alice):
    payload = {
        "max": MAX_INT64,
        "min": -(2**63),
        "largest": 1.7976931348623157e308,
        "tiniest": 5e-324,
        "paired": "\U0001f600",
        "deep": json.loads(nest(62, "1")),  # the body's 64th level: payload is its 2nd
    }
    raw = json.dumps({"type": "t", "payload": payload}).encode()  # \ud83d\ude00: a pair

    created = alice.post("/api/v1/jobs", content=raw, headers=JSON_HEADERS)

    assert created.status_code == 201, created.text
    assert created.json()["payload"] == payload
    assert alice.get(created.headers["location"]).json()["payload"] == payload


def test_sixty_four_levels_are_accepted_and_sixty_five_refused(alice):
    at_limit = r'{"type": "t", "payload": ' + nest(63) + "}"
    over = r'{"type": "t", "payload": ' + nest(64) + "}"

    assert alice.post("/api/v1/jobs", content=at_limit, headers=JSON_HEADERS).status_code == 201
    assert_names(
        alice.post("/api/v1/jobs", content=over, headers=JSON_HEADERS),
        "payload" + "[0]" * 63,
        TOO_DEEP,
    )


def test_nesting_too_deep_for_the_decoder_is_400(alice, admin):
    before = footprint(admin)

    response = alice.post(
        "/api/v1/jobs",
        content=r'{"type": "t", "payload": ' + nest(100_000) + "}",
        headers=JSON_HEADERS,
    )

    details = assert_error(response, 400, "invalid_request")
    assert list(details) == ["body"]
    assert footprint(admin) == before


@pytest.mark.parametrize(
    ("body", "path", "problem"),
    [
        pytest.param(r'{"metadata": {"k": 1e400}}', "metadata.k", FINITE, id="inf"),
        pytest.param(r'{"metadata": {"a": [1, 2, "\ud800"]}}', "metadata.a[2]", UNICODE, id="str"),
        pytest.param(r'{"metadata": {"\udfff": true}}', "metadata", UNICODE, id="key"),
        pytest.param(r'{"name": "\ud800", "starred": true}', "name", UNICODE, id="name"),
        pytest.param(r'{"metadata": {"n": 18446744073709551616}}', "metadata.n", INT64, id="int"),
    ],
)
def test_patch_with_a_value_the_store_cannot_hold_changes_nothing(
    alice, admin, body, path, problem
):
    job = create(alice, metadata={"keep": 1})
    before = footprint(admin)

    response = alice.patch(f"/api/v1/jobs/{job['id']}", content=body, headers=JSON_HEADERS)

    assert_names(response, path, problem)
    assert alice.get(f"/api/v1/jobs/{job['id']}").json() == job
    assert footprint(admin) == before


def test_cancel_reason_that_is_not_unicode_leaves_the_job_pending(alice, admin):
    job = create(alice)
    before = footprint(admin)

    response = alice.post(
        f"/api/v1/jobs/{job['id']}/cancel", content=r'{"reason": "\ud800"}', headers=JSON_HEADERS
    )

    assert_names(response, "reason", UNICODE)
    assert alice.get(f"/api/v1/jobs/{job['id']}").json() == job
    assert footprint(admin) == before


WORKER_POISON = [
    pytest.param("logs", r'{"message": "m", "data": {"k": 1e400}}', "data.k", FINITE, id="log"),
    pytest.param(
        "logs",
        r'{"entries": [{"message": "a"}, {"message": "b", "data": {"k": 1e400}}]}',
        "entries[1].data.k",
        FINITE,
        id="log-entries",
    ),
    pytest.param("logs", r'{"message": "\ud800"}', "message", UNICODE, id="log-message"),
    pytest.param("succeed", r'{"result": {"x": 1e400}}', "result.x", FINITE, id="result"),
    pytest.param(
        "succeed",
        r'{"result": 1, "result_type": "\udfff"}',
        "result_type",
        UNICODE,
        id="result-type",
    ),
    pytest.param(
        "fail",
        r'{"error": {"message": "m", "details": {"k": -1e400}}}',
        "error.details.k",
        FINITE,
        id="error-details",
    ),
    pytest.param("fail", r'{"error": {"code": "\ud800"}}', "error.code", UNICODE, id="error-code"),
    pytest.param("progress", r'{"total": 9223372036854775808}', "total", INT64, id="progress-int"),
    pytest.param("progress", r'{"percent": 1e400}', "percent", FINITE, id="progress-inf"),
    pytest.param("progress", r'{"stage": "\ud800"}', "stage", UNICODE, id="progress-stage"),
]


@pytest.mark.parametrize(("action", "body", "path", "problem"), WORKER_POISON)
def test_worker_report_the_store_cannot_hold_is_400_and_the_lease_lives_on(
    alice, admin, worker, action, body, path, problem
):
    claimed = running_job(alice, worker)
    job_id, lease = claimed["job"]["id"], {"Job-Lease": claimed["lease"]["token"]}
    before = footprint(admin)

    response = worker.post(
        f"/api/v1/jobs/{job_id}/{action}", content=body, headers=JSON_HEADERS | lease
    )

    assert_names(response, path, problem)
    assert footprint(admin) == before
    assert alice.get(f"/api/v1/jobs/{job_id}").json()["status"] == "running"
    assert worker.post(f"/api/v1/jobs/{job_id}/heartbeat", headers=lease).status_code == 200


def test_claim_with_a_worker_id_that_is_not_unicode_claims_nothing(alice, admin, worker):
    job = create(alice, type="claim.me")
    before = footprint(admin)

    response = worker.post(
        "/api/v1/workers/claim",
        content=r'{"types": ["claim.me"], "worker_id": "\ud800"}',
        headers=JSON_HEADERS,
    )

    assert_names(response, "worker_id", UNICODE)
    assert footprint(admin) == before
    claimed = claim(worker, ["claim.me"])
    assert claimed is not None
    assert claimed["job"]["id"] == job["id"]
