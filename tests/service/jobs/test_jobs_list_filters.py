"""GET /api/v1/jobs: filters, their totals, what each caller sees, and invalid parameters."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests import worker_steps
from tests.service.jobs.listing import assert_invalid, fetch, ids, listing, walk
from tests.support import LiveServer, create

pytestmark = pytest.mark.backends("sqlite", "postgres")

TERMINAL = {"succeeded", "failed", "cancelled"}


def epoch_ms(timestamp):
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


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


@pytest.fixture(scope="module")
def filter_world(module_settings):
    """A server holding `filter_jobs`, which the filter tests only read."""
    live = LiveServer(module_settings("filters")).start()
    with live.client("alice") as alice, live.client("bob") as bob:
        jobs = filter_jobs(live, alice, bob)
    yield live, jobs
    live.stop()


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


@pytest.mark.backends("sqlite")  # rejected before the store is read
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


@pytest.mark.backends("sqlite")  # rejected before the store is read
def test_offset_beyond_64_bits_is_rejected(shared_server, reader):
    response = reader.get("/api/v1/jobs", params={"offset": "9" * 25})

    assert_invalid(response, "offset")


@pytest.mark.backends("sqlite")  # rejected before the store is read
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


@pytest.mark.backends("sqlite")  # rejected before the store is read
@pytest.mark.parametrize("parameter", ["stauts", "page", "include", "access_token"])
def test_unknown_query_parameter_is_rejected_naming_it(reader, parameter):
    assert_invalid(reader.get("/api/v1/jobs", params={parameter: "x"}), parameter)


@pytest.mark.backends("sqlite")  # rejected before the store is read
def test_created_from_with_unicode_digits_is_rejected(shared_server, reader):
    response = reader.get("/api/v1/jobs", params={"created_from": "\u00b2"})

    assert_invalid(response, "created_from")


@pytest.mark.backends("sqlite")  # rejected before the store is read
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
