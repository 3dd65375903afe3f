"""Property-based fuzzing of every documented operation (schemathesis): no input may produce
a 5xx, and every answer conforms to the OpenAPI document the server publishes."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection

from service.openapi.document import document
from tests.support import LiveServer, make_settings

schema = schemathesis.openapi.from_dict(document())


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LiveServer(make_settings(tmp_path_factory.mktemp("fuzz"))).start()
    with server.client("fuzzer") as client:  # something to find: a job with events
        job = client.post("/api/v1/jobs", json={"type": "fuzz.seed"}).json()
        client.patch(f"/api/v1/jobs/{job['id']}", json={"starred": True})
    yield server
    server.stop()


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_and_never_fails(case, live):
    # Rules a schema cannot state, which the document states in words: a cursor is only ever
    # one this API made, and offset and cursor exclude each other.
    if case.query:
        case.query.pop("cursor", None)
        # A live stream never ends by itself: the SSE form is tested in test_sse_*.py.
        case.query.pop("stream", None)
    headers = {"Authorization": f"Bearer {live.token('fuzzer', 'jobs:read jobs:write')}"}
    case.call_and_validate(base_url=live.url, headers=headers, excluded_checks=_excluded(case))


def _excluded(case) -> list:
    # HTTP allows any extra header: "headers with unexpected properties" (generated once an
    # operation documents a header, here Last-Event-ID) are not invalid data.
    negative = {
        location
        for location, info in case.meta.components.items()
        if info.mode == GenerationMode.NEGATIVE
    }
    return [negative_data_rejection] if negative == {ParameterLocation.HEADER} else []
