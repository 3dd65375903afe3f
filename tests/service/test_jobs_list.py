from __future__ import annotations

import base64
import json
from datetime import datetime

import pytest

from tests import worker_steps
from tests.support import LiveServer, create, make_settings

RANK = {"low": 0, "normal": 1, "high": 2}
TERMINAL = {"succeeded", "failed", "cancelled"}


def fetch(client, job_id):
    return client.get(f"/api/v1/jobs/{job_id}").json()


def listing(client, **params):
    response = client.get("/api/v1/jobs", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def ids(page):
    return [item["id"] for item in page["items"]]


def walk(client, limit, **params):
    """Every job, page by page through `next_cursor`; checks each page on the way."""
    seen = []
    page = listing(client, limit=limit, **params)
    while True:
        assert len(page["items"]) <= limit
        seen.extend(ids(page))
        if page["next_cursor"] is None:
            return seen
        assert len(page["items"]) == limit
        page = listing(client, limit=limit, cursor=page["next_cursor"], **params)


def expected_order(jobs, sort, order):
    """`jobs` in creation order, sorted as API.md says; ties go by creation order."""

    def key(indexed):
        index, job = indexed
        if sort == "priority":
            return (RANK[job["priority"]], job["created_at"], index)
        return (job[sort] or "", index)  # unfinished ("") first ascending, last descending

    ordered = sorted(enumerate(jobs), key=key, reverse=order == "desc")
    return [job["id"] for _, job in ordered]


def epoch_ms(timestamp):
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


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


def filter_jobs(server, alice, bob):
    """Alice's jobs across every filterable field (in creation order), and one of Bob's."""
    specs = [
        {"type": "render", "priority": "high", "category": "export"},
        {"type": "render", "priority": "normal"},
        {"type": "render", "priority": "low", "category": "export"},
        {"type": "email", "priority": "normal", "category": "notify"},
        {"type": "email", "priority": "high"},
        {"type": "email", "priority": "low", "category": "notify"},
        {"type": "report", "priority": "normal", "category": "export"},
        {"type": "report", "priority": "high"},
    ]
    jobs = [create(alice, **spec)["id"] for spec in specs]
    worker_steps.start(server, jobs[1])
    worker_steps.start(server, jobs[2])
    worker_steps.succeed(server, jobs[2], result={"url": "u"}, result_type="video")
    worker_steps.start(server, jobs[3])
    worker_steps.fail(server, jobs[3])
    alice.post(f"/api/v1/jobs/{jobs[4]}/cancel")
    worker_steps.start(server, jobs[5])
    worker_steps.succeed(server, jobs[5], result_type="report")
    alice.patch(f"/api/v1/jobs/{jobs[5]}", json={"starred": True})
    alice.patch(f"/api/v1/jobs/{jobs[6]}", json={"starred": True})
    worker_steps.start(server, jobs[7])
    alice.post(f"/api/v1/jobs/{jobs[7]}/cancel")
    create(bob, type="render", priority="high", category="export")
    return [fetch(alice, job_id) for job_id in jobs]


@pytest.fixture
def reader(shared_server):
    with shared_server.client("alice") as client:
        yield client


@pytest.fixture(scope="module")
def sort_world(tmp_path_factory):
    """A server holding `varied_jobs`, which the sort tests only read."""
    live = LiveServer(make_settings(tmp_path_factory.mktemp("sorts"))).start()
    with live.client("alice") as client:
        jobs = varied_jobs(live, client)
    yield live, jobs
    live.stop()


@pytest.fixture(scope="module")
def filter_world(tmp_path_factory):
    """A server holding `filter_jobs`, which the filter tests only read."""
    live = LiveServer(make_settings(tmp_path_factory.mktemp("filters"))).start()
    with live.client("alice") as alice, live.client("bob") as bob:
        jobs = filter_jobs(live, alice, bob)
    yield live, jobs
    live.stop()


def assert_invalid(response, parameter):
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert parameter in error["details"]


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


@pytest.mark.parametrize("limit", ["0", "101", "x", "-1", "1.5", "", " ", "1e2"])
def test_limit_out_of_bounds_or_not_an_integer_is_rejected(reader, limit):
    assert_invalid(reader.get("/api/v1/jobs", params={"limit": limit}), "limit")


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


def test_cursor_of_another_user_is_rejected(server, alice, bob):
    for client in (alice, alice, bob, bob):
        create(client)

    cursor = listing(alice, limit=1)["next_cursor"]

    assert_invalid(bob.get("/api/v1/jobs", params={"cursor": cursor}), "cursor")


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


@pytest.mark.parametrize(
    ("params", "matches"),
    [
        pytest.param({"type": "render"}, lambda j: j["type"] == "render", id="type"),
        pytest.param(
            {"type": "render,email"}, lambda j: j["type"] in ("render", "email"), id="type-comma"
        ),
        pytest.param(
            {"type": ["render", "report"]},
            lambda j: j["type"] in ("render", "report"),
            id="type-repeated",
        ),
        pytest.param({"status": "pending"}, lambda j: j["status"] == "pending", id="status"),
        pytest.param({"status": "running"}, lambda j: j["status"] == "running", id="running"),
        pytest.param(
            {"status": "succeeded,failed"},
            lambda j: j["status"] in ("succeeded", "failed"),
            id="status-comma",
        ),
        pytest.param(
            {"status": ["cancelled", "pending"]},
            lambda j: j["status"] in ("cancelled", "pending"),
            id="status-repeated",
        ),
        pytest.param({"priority": "high"}, lambda j: j["priority"] == "high", id="priority"),
        pytest.param(
            {"priority": ["low", "normal"]},
            lambda j: j["priority"] in ("low", "normal"),
            id="priority-repeated",
        ),
        pytest.param({"category": "export"}, lambda j: j["category"] == "export", id="category"),
        pytest.param(
            {"category": "export,notify"},
            lambda j: j["category"] in ("export", "notify"),
            id="category-comma",
        ),
        pytest.param({"finished": "true"}, lambda j: j["status"] in TERMINAL, id="finished"),
        pytest.param({"finished": "false"}, lambda j: j["status"] not in TERMINAL, id="unfinished"),
        pytest.param({"starred": "true"}, lambda j: j["starred"], id="starred"),
        pytest.param({"starred": "false"}, lambda j: not j["starred"], id="not-starred"),
        pytest.param(
            {"result_type": "video"}, lambda j: j["result_type"] == "video", id="result-type"
        ),
        pytest.param(
            {"result_type": "video,report"},
            lambda j: j["result_type"] in ("video", "report"),
            id="result-type-comma",
        ),
        pytest.param(
            {"parent_id": "00000000-0000-4000-8000-000000000000"},
            lambda j: False,
            id="parent-id",
        ),
        pytest.param(
            {"type": "email", "status": "succeeded"},
            lambda j: j["type"] == "email" and j["status"] == "succeeded",
            id="type-and-status",
        ),
        pytest.param(
            {"category": "export", "finished": "false", "priority": "high,normal"},
            lambda j: (
                j["category"] == "export"
                and j["status"] not in TERMINAL
                and j["priority"] in ("high", "normal")
            ),
            id="category-unfinished-priority",
        ),
        pytest.param(
            {"starred": "true", "finished": "true", "type": "email"},
            lambda j: j["starred"] and j["status"] in TERMINAL and j["type"] == "email",
            id="starred-finished-type",
        ),
        pytest.param({"type": "nothing"}, lambda j: False, id="no-match"),
    ],
)
def test_filter_returns_exactly_the_matching_jobs_and_their_total(filter_world, params, matches):
    server, jobs = filter_world
    expected = [job["id"] for job in reversed(jobs) if matches(job)]

    with server.client("alice") as alice:
        page = listing(alice, limit=100, **params)
        walked = walk(alice, 2, **params)

    assert ids(page) == expected
    assert page["total"] == len(expected)
    assert walked == expected


def test_created_from_and_created_to_take_rfc3339_and_epoch_milliseconds(alice):
    jobs = [create(alice) for _ in range(4)]
    middle = jobs[2]["created_at"]
    after = [j["id"] for j in reversed(jobs) if j["created_at"] >= middle]
    before = [j["id"] for j in reversed(jobs) if j["created_at"] < middle]

    for value in (middle, epoch_ms(middle), middle.replace("Z", "+00:00")):
        page_from = listing(alice, created_from=value)
        page_to = listing(alice, created_to=value)
        assert (ids(page_from), page_from["total"]) == (after, len(after))
        assert (ids(page_to), page_to["total"]) == (before, len(before))


def test_created_range_combines_with_other_filters(server, alice):
    first = create(alice, type="a")
    create(alice, type="b")
    last = create(alice, type="a")
    window = {"created_from": first["created_at"], "created_to": epoch_ms(last["created_at"]) + 1}

    page = listing(alice, type="a", **window)

    assert ids(page) == [last["id"], first["id"]]
    assert page["total"] == 2
    assert listing(alice, created_from="2999-01-01T00:00:00Z")["total"] == 0


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("sort", "name"),
        ("sort", "CREATED_AT"),
        ("order", "up"),
        ("status", "done"),
        ("status", "pending,bogus"),
        ("priority", "urgent"),
        ("finished", "maybe"),
        ("finished", "1"),
        ("starred", "yes"),
        ("parent_id", "not-a-uuid"),
        ("parent_id", "00000000-0000-4000-8000-000000000000,nope"),
        ("created_from", "yesterday"),
        ("created_from", "2026-01-01T00:00:00"),
        ("created_from", "-5"),
        ("created_to", "2026-13-01T00:00:00Z"),
        ("type", ""),
    ],
)
def test_invalid_parameter_value_is_rejected_naming_it(reader, parameter, value):
    assert_invalid(reader.get("/api/v1/jobs", params={parameter: value}), parameter)


def test_offset_beyond_64_bits_is_rejected(shared_server, reader):
    response = reader.get("/api/v1/jobs", params={"offset": "9" * 25})

    assert_invalid(response, "offset")


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("created_from", "0001-01-01T00:00:00+01:00"),
        ("created_to", "9999-12-31T23:30:00-01:00"),
    ],
)
def test_time_outside_the_utc_calendar_is_rejected(shared_server, reader, parameter, value):
    response = reader.get("/api/v1/jobs", params={parameter: value})

    assert_invalid(response, parameter)


@pytest.mark.parametrize("parameter", ["stauts", "page", "include", "access_token"])
def test_unknown_query_parameter_is_rejected_naming_it(reader, parameter):
    assert_invalid(reader.get("/api/v1/jobs", params={parameter: "x"}), parameter)


def test_created_from_with_unicode_digits_is_rejected(shared_server, reader):
    response = reader.get("/api/v1/jobs", params={"created_from": "\u00b2"})

    assert_invalid(response, "created_from")


@pytest.mark.parametrize("parameter", ["limit", "offset", "sort", "order", "cursor", "finished"])
def test_repeated_scalar_parameter_is_rejected(reader, parameter):
    values = {
        "limit": ["1", "2"],
        "offset": ["0", "1"],
        "sort": ["created_at", "created_at"],
        "order": ["asc", "desc"],
        "cursor": ["a", "b"],
        "finished": ["true", "false"],
    }

    assert_invalid(reader.get("/api/v1/jobs", params={parameter: values[parameter]}), parameter)


def test_admin_sees_every_owner_and_may_filter_by_owner(server, alice, bob, admin):
    mine = [create(alice)["id"] for _ in range(2)]
    theirs = create(bob)["id"]

    everyone = listing(admin)
    only_bob = listing(admin, owner="bob")
    both = listing(admin, owner="alice,bob")

    assert (set(ids(everyone)), everyone["total"]) == ({*mine, theirs}, 3)
    assert (ids(only_bob), only_bob["total"]) == ([theirs], 1)
    assert (ids(both), both["total"]) == ([theirs, *mine[::-1]], 3)
    assert listing(admin, owner="nobody")["total"] == 0


def test_non_admin_sees_only_own_jobs_whatever_the_owner_filter(server, alice, bob):
    mine = create(alice)["id"]
    create(bob)

    assert (ids(listing(alice)), listing(alice)["total"]) == ([mine], 1)
    assert listing(alice, owner="bob") == {
        "items": [],
        "total": 0,
        "offset": 0,
        "limit": 20,
        "next_cursor": None,
    }
    assert listing(alice, owner="alice,bob")["total"] == 1


def test_totals_follow_cancel_patch_and_delete(server, alice):
    a, b, c, d = (create(alice)["id"] for _ in range(4))
    worker_steps.start(server, d)

    def totals():
        return {
            name: listing(alice, **params)["total"]
            for name, params in {
                "all": {},
                "pending": {"status": "pending"},
                "running": {"status": "running"},
                "cancelled": {"status": "cancelled"},
                "finished": {"finished": "true"},
                "unfinished": {"finished": "false"},
                "starred": {"starred": "true"},
                "not_starred": {"starred": "false"},
            }.items()
        }

    start = {"all": 4, "pending": 3, "running": 1, "cancelled": 0, "finished": 0}
    assert totals() == start | {"unfinished": 4, "starred": 0, "not_starred": 4}

    alice.post(f"/api/v1/jobs/{a}/cancel")
    alice.patch(f"/api/v1/jobs/{b}", json={"starred": True})
    alice.patch(f"/api/v1/jobs/{a}", json={"starred": True})
    assert totals() == {
        "all": 4,
        "pending": 2,
        "running": 1,
        "cancelled": 1,
        "finished": 1,
        "unfinished": 3,
        "starred": 2,
        "not_starred": 2,
    }

    alice.delete(f"/api/v1/jobs/{b}")
    alice.delete(f"/api/v1/jobs/{d}")
    alice.patch(f"/api/v1/jobs/{a}", json={"starred": False})
    assert totals() == {
        "all": 2,
        "pending": 1,
        "running": 0,
        "cancelled": 1,
        "finished": 1,
        "unfinished": 1,
        "starred": 0,
        "not_starred": 2,
    }
    assert set(ids(listing(alice))) == {a, c}
