"""GET /api/v1/jobs: the page's shape, limit, offset, sorts and cursor paging."""

from __future__ import annotations

import base64
import json

import pytest

from tests import worker_steps
from tests.service.jobs.listing import assert_invalid, fetch, ids, listing, walk
from tests.support import LiveServer, create

pytestmark = pytest.mark.backends("sqlite", "postgres")

RANK = {"low": 0, "normal": 1, "high": 2}


def expected_order(jobs, sort, order):
    """`jobs` in creation order, sorted as API.md says; ties go by creation order."""

    def key(indexed):
        index, job = indexed
        if sort == "priority":
            return (RANK[job["priority"]], job["created_at"], index)
        return (job[sort] or "", index)  # unfinished ("") first ascending, last descending

    ordered = sorted(enumerate(jobs), key=key, reverse=order == "desc")
    return [job["id"] for _, job in ordered]


def varied_jobs(server, client):
    """Seven jobs whose created, updated and finished orders and priorities all differ."""
    jobs = [create(client, priority=("low", "normal", "high")[i % 3]) for i in range(7)]
    one, two, three, four, five, six, _ = (job["id"] for job in jobs)
    worker_steps.start(server, five)
    worker_steps.succeed(server, five)
    client.post(f"/api/v1/jobs/{two}/cancel")
    worker_steps.start(server, one)
    worker_steps.fail(server, one)
    client.patch(f"/api/v1/jobs/{four}", json={"starred": True})
    worker_steps.start(server, six)
    client.patch(f"/api/v1/jobs/{three}", json={"name": "renamed"})
    return [fetch(client, job["id"]) for job in jobs]


@pytest.fixture(scope="module")
def sort_world(module_settings):
    """A server holding `varied_jobs`, which the sort tests only read."""
    live = LiveServer(module_settings("sorts")).start()
    with live.client("alice") as client:
        jobs = varied_jobs(live, client)
    yield live, jobs
    live.stop()


def test_list_shape_and_defaults(alice):
    job = create(alice)

    page = listing(alice)

    assert page == {"items": [job], "total": 1, "offset": 0, "limit": 20, "next_cursor": None}


def test_limit_defaults_to_20(alice):
    for _ in range(21):
        create(alice)

    page = listing(alice)

    assert (len(page["items"]), page["total"], page["limit"]) == (20, 21, 20)
    assert page["next_cursor"] is not None


def test_limit_of_100_is_accepted(alice):
    create(alice)

    assert listing(alice, limit=100)["limit"] == 100


@pytest.mark.backends("sqlite")  # rejected before the store is read
@pytest.mark.parametrize("limit", ["0", "101", "x", "-1", "1.5", "", " ", "1e2"])
def test_limit_out_of_bounds_or_not_an_integer_is_rejected(reader, limit):
    assert_invalid(reader.get("/api/v1/jobs", params={"limit": limit}), "limit")


@pytest.mark.backends("sqlite")  # rejected before the store is read
@pytest.mark.parametrize(
    "value",
    [
        pytest.param("--5", id="double-minus"),
        pytest.param("\u00b2", id="superscript-two"),
    ],
)
def test_limit_that_only_looks_numeric_is_rejected(shared_server, reader, value):
    response = reader.get("/api/v1/jobs", params={"limit": value})

    assert_invalid(response, "limit")


@pytest.mark.backends("sqlite")  # rejected before the store is read
@pytest.mark.parametrize("offset", ["-1", "x", "1.0"])
def test_invalid_offset_is_rejected(reader, offset):
    assert_invalid(reader.get("/api/v1/jobs", params={"offset": offset}), "offset")


def test_offset_pages_through_jobs(alice):
    jobs = [create(alice)["id"] for _ in range(5)]
    newest_first = jobs[::-1]

    page = listing(alice, limit=2, offset=2)

    assert ids(page) == newest_first[2:4]
    assert (page["offset"], page["limit"], page["total"]) == (2, 2, 5)
    assert ids(listing(alice, limit=2, offset=4)) == newest_first[4:]
    assert listing(alice, limit=2, offset=5)["items"] == []


@pytest.mark.backends("sqlite")  # rejected before the store is read
def test_offset_and_cursor_together_are_rejected(alice):
    for _ in range(3):
        create(alice)
    cursor = listing(alice, limit=1)["next_cursor"]

    response = alice.get("/api/v1/jobs", params={"offset": 0, "cursor": cursor})

    assert response.status_code == 400
    assert {"offset", "cursor"} & set(response.json()["error"]["details"])


@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("sort", ["created_at", "updated_at", "finished_at", "priority"])
def test_cursor_paging_walks_every_job_once_in_sort_order(sort_world, sort, order):
    server, jobs = sort_world
    with server.client("alice") as alice:
        walked = walk(alice, 3, sort=sort, order=order)
        first = listing(alice, limit=100, sort=sort, order=order)

    assert walked == expected_order(jobs, sort, order)
    assert ids(first) == walked
    assert first["next_cursor"] is None


def test_order_defaults_to_desc_and_sort_to_created_at(sort_world):
    server, jobs = sort_world
    with server.client("alice") as alice:
        assert ids(listing(alice)) == expected_order(jobs, "created_at", "desc")


def test_next_cursor_is_null_when_the_last_page_is_exactly_full(alice):
    for _ in range(4):
        create(alice)

    first = listing(alice, limit=2)
    second = listing(alice, limit=2, cursor=first["next_cursor"])

    assert len(second["items"]) == 2
    assert second["next_cursor"] is None


def test_cursor_pages_report_no_offset(alice):
    for _ in range(3):
        create(alice)

    page = listing(alice, limit=1, cursor=listing(alice, limit=1)["next_cursor"])

    assert page["offset"] is None
    assert page["total"] == 3


def test_cursor_may_be_used_with_another_limit(alice):
    jobs = [create(alice)["id"] for _ in range(5)]

    first = listing(alice, limit=1)
    rest = listing(alice, limit=10, cursor=first["next_cursor"])

    assert ids(first) + ids(rest) == jobs[::-1]


def test_cursor_paging_neither_skips_nor_repeats_while_jobs_are_created(alice):
    jobs = [create(alice)["id"] for _ in range(6)]
    seen = []
    page = listing(alice, limit=2)
    while True:
        seen.extend(ids(page))
        create(alice)
        if page["next_cursor"] is None:
            break
        page = listing(alice, limit=2, cursor=page["next_cursor"])

    assert seen == jobs[::-1]


@pytest.mark.backends("sqlite")  # rejected before the store is read
@pytest.mark.parametrize(
    "other",
    [
        pytest.param({"sort": "updated_at"}, id="sort"),
        pytest.param({"sort": "priority"}, id="sort-with-longer-key"),
        pytest.param({"order": "asc"}, id="order"),
        pytest.param({"status": "pending"}, id="filter-added"),
        pytest.param({"type": "other"}, id="filter-changed"),
    ],
)
def test_cursor_reused_with_another_query_is_rejected(alice, other):
    for _ in range(3):
        create(alice)
    cursor = listing(alice, limit=1, type="t")["next_cursor"]
    params = {"type": "t", **other}

    assert_invalid(alice.get("/api/v1/jobs", params={**params, "cursor": cursor}), "cursor")


@pytest.mark.backends("sqlite")  # rejected before the store is read
def test_cursor_of_another_user_is_rejected(server, alice, bob):
    for client in (alice, alice, bob, bob):
        create(client)

    cursor = listing(alice, limit=1)["next_cursor"]

    assert_invalid(bob.get("/api/v1/jobs", params={"cursor": cursor}), "cursor")


@pytest.mark.backends("sqlite")  # rejected before the store is read
@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("garbage", id="garbage"),
        pytest.param("!!!", id="not-base64"),
        pytest.param("", id="empty"),
        pytest.param(base64.urlsafe_b64encode(b"[1, 2]").decode(), id="json-list"),
        pytest.param(base64.urlsafe_b64encode(b'{"k": "x"}').decode(), id="key-not-list"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="not-utf8"),
    ],
)
def test_garbage_cursor_is_rejected(reader, cursor):
    assert_invalid(reader.get("/api/v1/jobs", params={"cursor": cursor}), "cursor")


@pytest.mark.backends("sqlite")  # rejected before the store is read
def test_cursor_without_its_query_fields_is_rejected(shared_server, reader):
    cursor = base64.urlsafe_b64encode(b'{"k": [1, 2]}').decode()

    response = reader.get("/api/v1/jobs", params={"cursor": cursor})

    assert_invalid(response, "cursor")


def test_tampered_cursor_with_huge_key_is_rejected(server, alice):
    for _ in range(2):
        create(alice)
    cursor = listing(alice, limit=1)["next_cursor"]
    value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    value["k"] = [10**20, 1]
    tampered = base64.urlsafe_b64encode(json.dumps(value).encode()).decode()

    response = alice.get("/api/v1/jobs", params={"cursor": tampered})

    assert_invalid(response, "cursor")
