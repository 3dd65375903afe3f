"""Property-based fuzzing of every operation of the document the server serves (schemathesis,
stateless): no input may produce a 5xx, and every answer has a documented status and matches
its schema. The stateful run, along the document's links, is test_fuzz_stateful.py."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.result import Ok
from schemathesis.pytest.lazy import get_all_tests

from tests.service.edge import fuzzing

# Per operation, on top of its coverage cases (boundaries, each invalid value in turn), which
# schemathesis derives from the schema and always sends.
SETTINGS = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with fuzzing.serve(tmp_path_factory.mktemp("fuzz")) as server:
        with server.client("fuzzer") as client:  # something to find: a job with events
            job = client.post("/api/v1/jobs", json={"type": "fuzz.seed"}).json()
            client.patch(f"/api/v1/jobs/{job['id']}", json={"starred": True})
            for _ in range(3):  # something to claim
                client.post("/api/v1/jobs", json={"type": "a"})
        yield server


def test_every_operation_conforms_and_never_fails(live, capsys, subtests):
    # The document as served, not as built in-process: what a client fetches is what is fuzzed.
    # Loaded in the test (the server runs by then), and its operations' tests run as subtests:
    # schemathesis's own lazy loader (`from_fixture`) fails on pytest 9.2 (`Function._nodeid`).
    served = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    headers = {"Authorization": f"Bearer {live.token('fuzzer', fuzzing.SCOPES)}"}
    with fuzzing.Tally.reported(capsys, "stateless", fuzzing.STATELESS_SECONDS) as tally:

        def check(case):
            if not tally.admit():
                return  # past the time bound: the summary says how many were not sent
            tamed = fuzzing.tame(case)
            case.call_and_validate(
                base_url=live.url, headers=headers, excluded_checks=fuzzing.excluded(case, tamed)
            )

        tests = list(
            get_all_tests(schema=served, test_func=check, settings=SETTINGS, given_kwargs={})
        )
        assert all(isinstance(result, Ok) for result in tests), tests
        for result in tests:
            operation, test = result.ok()
            with subtests.test(operation.label):
                test()
