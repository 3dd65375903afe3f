"""Hostile JSON in every body field of the worker routes (issue 7): claim, and the reports on a
claimed job. The properties are test_hostile_values_jobs.py's, the values hostile.py's."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.service.edge.hostile import (
    ENTRIES_BASE,
    FAIL_BASE,
    LOG_BASE,
    SETTINGS,
    Fragment,
    Path,
    accepted,
    field_paths,
    hostile,
    report,
    running_job,
    send,
)

pytestmark = pytest.mark.backends("sqlite", "postgres")


@pytest.fixture(scope="module")
def leased(mallory, worker):
    """A running job for the reports that leave it running (progress, logs)."""
    return running_job(mallory, worker, lease=3600)


# POST /api/v1/workers/claim


CLAIM_BASE = {"types": ["hv.nothing"], "worker_id": "w", "lease_seconds": 30, "wait_seconds": 0}


def _would_wait(at: Path, fragment: Fragment) -> bool:
    """A valid wait would hold the test for up to 30 s: nothing of type hv.nothing is due."""
    if at != ("wait_seconds",) or not fragment.storable or fragment.depth:
        return False
    value = fragment.value
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 30


@pytest.mark.backends("sqlite")  # the values reach the store as create's and succeed's do
@SETTINGS
@given(
    at=st.sampled_from([(), ("types",), ("types", 0), *field_paths(list(CLAIM_BASE)[1:])]),
    fragment=hostile,
)
def test_claim_with_hostile_values(worker, bystander, at, fragment):
    assume(not _would_wait(at, fragment))

    send(worker, bystander, "POST", "/api/v1/workers/claim", CLAIM_BASE, at, fragment)


# POST /api/v1/jobs/{id}/progress and /logs: the job stays running.


@pytest.mark.backends("sqlite")  # the values reach the store as create's and succeed's do
@SETTINGS
@given(
    at=st.sampled_from(
        [(), *field_paths(["percent", "stage", "message", "total", "completed", "failed"])]
    ),
    fragment=hostile,
)
def test_progress_with_hostile_values(worker, bystander, leased, at, fragment):
    report(worker, bystander, leased, "progress", {}, at, fragment)


@SETTINGS
@given(
    at=st.sampled_from(
        [
            (),
            *field_paths(["level", "message", "data"]),
            ("entries",),
            *field_paths(["level", "message", "data"], under=("entries", 1)),
        ]
    ),
    fragment=hostile,
)
def test_logs_with_hostile_values(worker, bystander, leased, at, fragment):
    base = ENTRIES_BASE if at[:1] == ("entries",) else LOG_BASE

    response = report(worker, bystander, leased, "logs", base, at, fragment)

    if at in (("data",), ("entries", 1, "data")):
        accepted(response, fragment, at)


# POST /api/v1/jobs/{id}/succeed and /fail: a fresh running job for each example.


@SETTINGS
@given(at=st.sampled_from([(), ("result",), ("result_type",)]), fragment=hostile)
def test_succeed_with_hostile_values(mallory, worker, bystander, at, fragment):
    claimed = running_job(mallory, worker, lease=3600)

    response = report(worker, bystander, claimed, "succeed", {}, at, fragment)

    if at == ("result",) and accepted(response, fragment, at):
        assert response.json()["status"] == "succeeded"
        assert response.json()["result"] == fragment.value
    job = mallory.get(f"/api/v1/jobs/{claimed['job']['id']}").json()
    assert job["status"] == ("succeeded" if response.status_code == 200 else "running")


@pytest.mark.backends("sqlite")  # the values reach the store as create's and succeed's do
@SETTINGS
@given(
    at=st.sampled_from(
        [
            (),
            ("error",),
            *field_paths(["message", "code", "details"], under=("error",)),
            ("retry",),
        ]
    ),
    fragment=hostile,
)
def test_fail_with_hostile_values(mallory, worker, bystander, at, fragment):
    claimed = running_job(mallory, worker, lease=3600)

    response = report(worker, bystander, claimed, "fail", FAIL_BASE, at, fragment)

    if at == ("error", "details") and accepted(response, fragment, at):
        assert response.json()["error"]["details"] == fragment.value
    job = mallory.get(f"/api/v1/jobs/{claimed['job']['id']}").json()
    assert (job["status"] == "running") == (response.status_code != 200)
