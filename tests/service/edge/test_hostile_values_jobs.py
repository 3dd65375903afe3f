"""Hostile JSON in every body field of every route that reads a body (issue 7): the job routes
here (create, patch, cancel), the worker routes in test_hostile_values_workers.py, the values
from hostile.py. Whatever the value, on every route:

- the answer is never a 5xx, and a 4xx is in the API's error shape;
- a value the store cannot hold is a 400 naming the field it is in;
- a value it can hold, in a field that takes any JSON, is accepted and served back unchanged;
- another owner's create, sent at the same time, succeeds.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.service.edge.hostile import (
    ENTRIES_BASE,
    FAIL_BASE,
    LOG_BASE,
    MAX_DEPTH,
    SETTINGS,
    Fragment,
    Path,
    accepted,
    array,
    at_the_limits,
    field_paths,
    hostile,
    nested,
    ordinary,
    report,
    running_job,
    send,
)
from tests.support import create

pytestmark = pytest.mark.backends("sqlite", "postgres")

# POST /api/v1/jobs: every field, every child's fields, and the body itself.

_JOB_FIELDS = [
    "type",
    "payload",
    "name",
    "category",
    "priority",
    "metadata",
    "max_attempts",
    "run_at",
    "children",
]
CREATE_BASE = {
    "type": "hv.t",
    "children": [{"type": "hv.child", "name": "first"}, {"type": "hv.child", "name": "second"}],
}
CREATE_PATHS = [
    (),
    *field_paths(_JOB_FIELDS),
    *field_paths(_JOB_FIELDS[:-1], under=("children", 0)),
    *field_paths(["payload", "metadata"], under=("children", 1)),
]


def _total(client: httpx.Client) -> int:
    total: int = client.get("/api/v1/jobs", params={"limit": 1}).json()["total"]
    return total


@SETTINGS
@given(at=st.sampled_from(CREATE_PATHS), fragment=hostile)
def test_create_with_hostile_values(mallory, bystander, at, fragment):
    base = CREATE_BASE if at[:1] == ("children",) and len(at) > 1 else {"type": "hv.t"}
    before = _total(mallory)

    response = send(mallory, bystander, "POST", "/api/v1/jobs", base, at, fragment)

    created = 0
    if response.status_code == 201:  # the job, and its children if it is a batch
        created = 1 + ((response.json()["children"] or {}).get("total") or 0)
    assert _total(mallory) == before + created
    if at == ("payload",) and accepted(response, fragment, at):
        assert response.json()["payload"] == fragment.value
    if at == ("children", 1, "payload"):
        accepted(response, fragment, at)
    if at == ("metadata",) and fragment.kind == "object" and accepted(response, fragment, at):
        assert response.json()["metadata"] == fragment.value


# PATCH /api/v1/jobs/{id}


@pytest.fixture(scope="module")
def patched(mallory):
    return create(mallory, type="hv.patched")


@pytest.mark.backends("sqlite")  # the values reach the store as create's and succeed's do
@SETTINGS
@given(at=st.sampled_from([(), ("name",), ("starred",), ("metadata",)]), fragment=hostile)
def test_patch_with_hostile_values(mallory, bystander, patched, at, fragment):
    path = f"/api/v1/jobs/{patched['id']}"
    before = mallory.get(path).json()

    response = send(mallory, bystander, "PATCH", path, {}, at, fragment)

    after = mallory.get(path).json()
    assert after["version"] == before["version"] + (1 if response.status_code == 200 else 0)
    if at == ("metadata",) and fragment.kind == "object" and accepted(response, fragment, at):
        assert after["metadata"] == fragment.value


# POST /api/v1/jobs/{id}/cancel


@pytest.mark.backends("sqlite")  # the values reach the store as create's and succeed's do
@SETTINGS
@given(at=st.sampled_from([(), ("reason",)]), fragment=hostile)
def test_cancel_with_hostile_values(mallory, bystander, at, fragment):
    job = create(mallory, type="hv.cancel")
    path = f"/api/v1/jobs/{job['id']}"

    response = send(mallory, bystander, "POST", f"{path}/cancel", {}, at, fragment)

    status = mallory.get(path).json()["status"]
    assert status == ("cancelled" if response.status_code == 200 else "pending")


# Values the store can hold, right up to the depth limit, in every field that takes any JSON.

_holdable = st.one_of(
    ordinary, at_the_limits, st.lists(ordinary | at_the_limits, max_size=3).map(array)
)


def holdable(at: Path, *, objects: bool) -> st.SearchStrategy[Fragment]:
    """Values the store holds at `at`: often exactly as deep as a body may nest there."""

    def deepen(inner: Fragment, data: st.DataObject) -> Fragment:
        room = MAX_DEPTH - len(at) - inner.depth
        levels = data.draw(st.just(room) | st.integers(0, room))
        if objects and inner.kind != "object":
            levels = max(levels, 1)  # an object it must be
        if levels:
            inner = nested(levels, "{" if objects else data.draw(st.sampled_from("[{")), inner)
        return inner

    return st.builds(deepen, _holdable.filter(lambda f: f.depth < MAX_DEPTH - len(at)), st.data())


ANY_JSON = [
    ("create", ("payload",)),
    ("create", ("children", 1, "payload")),
    ("create", ("metadata",)),
    ("patch", ("metadata",)),
    ("logs", ("data",)),
    ("logs", ("entries", 1, "data")),
    ("succeed", ("result",)),
    ("fail", ("error", "details")),
]


def _served(mallory, worker, bystander, route, at, fragment) -> Any:
    """Sends the value to `route` at `at`; answers the value as the API then serves it."""
    if route == "create":
        base = CREATE_BASE if at[0] == "children" else {"type": "hv.t"}
        response = send(mallory, bystander, "POST", "/api/v1/jobs", base, at, fragment)
        assert response.status_code == 201, response.text
        if at[0] != "children":
            return response.json()[at[0]]
        children = mallory.get("/api/v1/jobs", params={"parent_id": response.json()["id"]})
        [second] = [c for c in children.json()["items"] if c["name"] == "second"]
        return second["payload"]
    if route == "patch":
        job = create(mallory, type="hv.patched")
        response = send(mallory, bystander, "PATCH", f"/api/v1/jobs/{job['id']}", {}, at, fragment)
        assert response.status_code == 200, response.text
        return mallory.get(f"/api/v1/jobs/{job['id']}").json()["metadata"]
    claimed = running_job(mallory, worker, lease=3600)
    bases: dict[str, Any] = {
        "logs": ENTRIES_BASE if at[0] == "entries" else LOG_BASE,
        "fail": FAIL_BASE,
    }
    response = report(worker, bystander, claimed, route, bases.get(route, {}), at, fragment)
    assert response.status_code == 200, response.text
    if route == "succeed":
        return response.json()["result"]
    if route == "fail":
        return response.json()["error"]["details"]
    events = mallory.get(f"/api/v1/jobs/{claimed['job']['id']}/events").json()["items"]
    return events[-1]["data"]


@SETTINGS
@given(where=st.sampled_from(ANY_JSON), data=st.data())
def test_values_the_store_can_hold_are_served_unchanged(mallory, worker, bystander, where, data):
    route, at = where
    fragment = data.draw(holdable(at, objects=at[-1] == "metadata"), label="fragment")
    assert fragment.fits(at)
    if len(at) + fragment.depth == MAX_DEPTH:
        event("exactly at the depth limit")

    assert _served(mallory, worker, bystander, route, at, fragment) == fragment.value
