"""Fuzzing of the Workers operations with a worker's token (schemathesis): no 5xx, and every
answer conforms to the served document. Claims never wait (a long poll would only slow it)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from service.openapi.document import document
from tests.support import LiveServer, make_settings

schema = schemathesis.openapi.from_dict(document()).include(tag="Workers")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = LiveServer(make_settings(tmp_path_factory.mktemp("fuzz-workers"))).start()
    with server.client("fuzzer") as client:  # something to claim
        for _ in range(5):
            client.post("/api/v1/jobs", json={"type": "a"})
    yield server
    server.stop()


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_worker_operations_conform_and_never_fail(case, live):
    wait = case.body.get("wait_seconds") if isinstance(case.body, dict) else None
    if isinstance(wait, int | float) and not isinstance(wait, bool) and 0 < wait <= 30:
        case.body["wait_seconds"] = 0  # a valid wait stays valid; an invalid one stays invalid
    headers = {"Authorization": f"Bearer {live.token('fuzzer', 'worker')}"}
    case.call_and_validate(base_url=live.url, headers=headers)
