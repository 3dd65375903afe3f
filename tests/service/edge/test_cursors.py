"""Paging a hostile client cannot abuse (issue 13): list cursors that were forged, altered, or
made for someone else answer exactly as a cursor that was never one, so they reveal nothing;
event positions past the end are an empty page, and malformed ones a 400 naming them."""

from __future__ import annotations

import base64
import json
import os

import pytest

from tests.service.edge.hostile import assert_error
from tests.support import create

NOT_A_CURSOR = {"cursor": "not a cursor from this API"}
QUERY = {"type": "page.t", "limit": 1}


@pytest.fixture(scope="module")
def alice(shared_server):
    with shared_server.client("alice") as client:
        yield client


@pytest.fixture(scope="module")
def bob(shared_server):
    with shared_server.client("bob") as client:
        yield client


@pytest.fixture(scope="module")
def cursors(alice, bob):
    """A first-page cursor of alice's and one of bob's, for the same query."""
    made = {}
    for name, client in (("alice", alice), ("bob", bob)):
        for _ in range(3):
            create(client, type="page.t")
        made[name] = client.get("/api/v1/jobs", params=QUERY).json()["next_cursor"]
    return made


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


def _refused_as_forged(response) -> None:
    assert assert_error(response, 400, "invalid_request") == NOT_A_CURSOR
    assert response.json()["error"]["message"] == "Invalid cursor."


def test_a_cursor_pages_on_for_the_caller_it_was_made_for(alice, cursors):
    page = alice.get("/api/v1/jobs", params=QUERY | {"cursor": cursors["alice"]})

    assert page.status_code == 200, page.text
    assert [job["owner"] for job in page.json()["items"]] == ["alice"]


def test_another_owners_cursor_is_answered_as_a_forged_one(alice, bob, cursors):
    forged = alice.get("/api/v1/jobs", params=QUERY | {"cursor": _b64(b'{"k": [1, 2]}')})

    stolen = alice.get("/api/v1/jobs", params=QUERY | {"cursor": cursors["bob"]})
    lent = bob.get("/api/v1/jobs", params=QUERY | {"cursor": cursors["alice"]})

    _refused_as_forged(stolen)
    _refused_as_forged(lent)
    assert stolen.json() == lent.json() == forged.json()


def test_a_cursor_does_not_name_its_owner(cursors):
    made = json.loads(_unb64(cursors["alice"]))

    assert "alice" not in json.dumps(made)


def test_an_admins_cursor_serves_admins_only(shared_server, alice, cursors):
    with shared_server.client("root", "admin") as admin:
        cursor = admin.get("/api/v1/jobs", params=QUERY).json()["next_cursor"]
        assert admin.get("/api/v1/jobs", params=QUERY | {"cursor": cursor}).status_code == 200
        _refused_as_forged(admin.get("/api/v1/jobs", params=QUERY | {"cursor": cursors["alice"]}))

    _refused_as_forged(alice.get("/api/v1/jobs", params=QUERY | {"cursor": cursor}))


def test_every_single_bit_flip_of_a_cursor_is_refused_or_pages_the_callers_own_jobs(alice, cursors):
    raw = _unb64(cursors["alice"])
    answers = set()
    for bit in range(0, len(raw) * 8, 3):  # every third bit: ~400 requests
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        response = alice.get("/api/v1/jobs", params=QUERY | {"cursor": _b64(bytes(flipped))})
        if response.status_code == 200:
            assert {job["owner"] for job in response.json()["items"]} <= {"alice"}
        else:
            assert response.status_code == 400, response.text
            assert list(response.json()["error"]["details"]) == ["cursor"]
        answers.add(response.status_code)
    assert 400 in answers


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param(_b64(os.urandom(120)), id="random-bytes"),
        pytest.param(_b64(b"{}"), id="empty-object"),
        pytest.param(_b64(b'{"s":"created_at","o":"desc","f":"x","k":[1,2]}'), id="no-owner"),
        pytest.param(_b64(b'{"k": "1"}'), id="key-a-string"),
        pytest.param(_b64(b'{"k": [1e400, 1]}'), id="key-infinite"),
        pytest.param(_b64(b'{"k": [18446744073709551616, 1]}'), id="key-past-64-bits"),
        pytest.param(_b64(b"[" * 10 + b"]" * 10), id="nested-arrays"),
        pytest.param(_b64(b'"\\ud800"'), id="lone-surrogate"),
        pytest.param("!!!!", id="not-base64"),
        pytest.param("A" * 1025, id="over-1024-characters"),
        pytest.param("=", id="padding-only"),
    ],
)
def test_a_cursor_that_was_never_one_is_refused(alice, cursor):
    _refused_as_forged(alice.get("/api/v1/jobs", params={"cursor": cursor}))


@pytest.mark.parametrize(
    "query",
    [{"limit": 0}, {"limit": 101}, {"limit": "1e1"}, {"offset": -1}, {"offset": "abc"}],
    ids=str,
)
def test_a_list_page_out_of_range_is_400_naming_it(alice, query):
    assert list(assert_error(alice.get("/api/v1/jobs", params=query), 400, "invalid_request")) == [
        *query
    ]


def test_an_offset_past_the_end_is_an_empty_page(alice):
    page = alice.get("/api/v1/jobs", params={"offset": 2**63 - 1})

    assert page.status_code == 200, page.text
    assert page.json()["items"] == []
    assert page.json()["next_cursor"] is None


# Event positions: `after` and `limit` on both event pages.


@pytest.fixture(scope="module")
def events_of(alice):
    job = create(alice, type="after.t")
    alice.post(f"/api/v1/jobs/{job['id']}/cancel")
    return [f"/api/v1/jobs/{job['id']}/events", f"/api/v1/events?job_id={job['id']}"]


@pytest.mark.parametrize("page", [0, 1], ids=["job-page", "all-page"])
@pytest.mark.parametrize("after", [10**9, 2**63 - 1])
def test_after_past_the_end_is_an_empty_page_not_an_error(alice, events_of, page, after):
    response = alice.get(events_of[page], params={"after": after})

    assert response.status_code == 200, response.text
    assert response.json()["items"] == []
    assert (response.json()["next_after"], response.json()["has_more"]) == (after, False)


@pytest.mark.parametrize("page", [0, 1], ids=["job-page", "all-page"])
@pytest.mark.parametrize(
    "query",
    [
        {"after": -1},
        {"after": "abc"},
        {"after": "1e3"},
        {"after": "1.0"},
        {"after": 2**63},
        {"after": "0x10"},
        {"after": "\u0661"},  # an Arabic-Indic 1: int() takes it, the API does not
        {"limit": 0},
        {"limit": 1001},
        {"limit": -5},
    ],
    ids=str,
)
def test_a_malformed_event_position_or_limit_is_400_naming_it(alice, events_of, page, query):
    response = alice.get(events_of[page], params=query)

    assert list(assert_error(response, 400, "invalid_request")) == [*query]
