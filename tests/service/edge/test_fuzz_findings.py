"""What the schemathesis runs (test_fuzz.py, test_fuzz_stateful.py) found, each pinned by a
test that failed before its fix: answers that broke their own schema, and values the document
allowed that the API refused, or the reverse."""

from __future__ import annotations

import json
import re

import jsonschema_rs
import pytest

from tests.service.edge.hostile import JSON_HEADERS, assert_error
from tests.support import create


@pytest.fixture(scope="module")
def served(shared_server):
    with shared_server.client("alice") as client:
        return client.get("/openapi.json").json()


@pytest.fixture(scope="module")
def alice(shared_server):
    with shared_server.client("alice") as client:
        yield client


def validator(document, component):
    root = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document["components"],
        "$ref": f"#/components/schemas/{component}",
    }
    return jsonschema_rs.validator_for(root)


# A float past 2^63 (whole, as every double that large is) was accepted and served back, but
# the document's JsonValue admitted only integers within 64 bits: the served job broke its schema.


def test_a_served_float_past_64_bits_matches_the_document(served, alice):
    payload = {"big": 1e19, "huge": -1.355407033652856e79, "largest": 1.7976931348623157e308}
    body = b'{"type": "t", "payload": {"big": 1e19, "huge": -1.355407033652856e79, '
    body += b'"largest": 1.7976931348623157e308}}'

    created = alice.post("/api/v1/jobs", content=body, headers=JSON_HEADERS)

    assert created.status_code == 201, created.text
    assert created.json()["payload"] == payload
    errors = list(validator(served, "Job").iter_errors(created.json()))
    assert errors == [], [str(error) for error in errors]


def test_the_same_number_as_plain_digits_is_refused_as_the_document_says(served, alice):
    response = alice.post(
        "/api/v1/jobs",
        content=b'{"type": "t", "payload": 10000000000000000000}',
        headers=JSON_HEADERS,
    )

    assert assert_error(response, 400, "invalid_request") == {
        "payload": "must be an integer from -9223372036854775808 to 9223372036854775807"
    }
    assert "as plain digits" in served["components"]["schemas"]["JsonValue"]["description"]


# A filter value of blanks only (" ", a tab) is a 400, but the document allowed any string of
# one character or more.

FREE_TEXT_FILTERS = ["CategoryFilter", "OwnerFilter", "ResultTypeFilter"]


@pytest.mark.parametrize("parameter", FREE_TEXT_FILTERS)
@pytest.mark.parametrize("value", [" ", "\t", " \t "])
def test_a_blank_filter_value_is_refused_as_the_document_says(served, alice, parameter, value):
    spec = served["components"]["parameters"][parameter]
    pattern = spec["schema"]["items"]["pattern"]

    response = alice.get("/api/v1/jobs", params={spec["name"]: value})

    assert assert_error(response, 400, "invalid_request") == {spec["name"]: "has an empty value"}
    assert not re.search(pattern, value)


@pytest.mark.parametrize("parameter", FREE_TEXT_FILTERS)
@pytest.mark.parametrize("value", [" a", "a\tb", "ü", "a,b"])
def test_a_filter_value_with_more_than_blanks_is_accepted_as_the_document_says(
    served, alice, parameter, value
):
    spec = served["components"]["parameters"][parameter]

    response = alice.get("/api/v1/jobs", params={spec["name"]: value})

    assert response.status_code == 200, response.text
    assert re.search(spec["schema"]["items"]["pattern"], value)


# Last-Event-ID was read by the SSE form only: on a JSON page a malformed one was ignored (the
# document lists it on both forms, API.md says malformed → 400) and a valid one did not win
# over `after`, as the document says it does.


@pytest.fixture(scope="module")
def history(alice):
    """A job of alice's with three events."""
    job = create(alice, type="lei.t")
    alice.patch(f"/api/v1/jobs/{job['id']}", json={"starred": True})
    alice.post(f"/api/v1/jobs/{job['id']}/cancel")
    return job, alice.get(f"/api/v1/jobs/{job['id']}/events").json()["items"]


def _pages(job):
    return [f"/api/v1/jobs/{job['id']}/events", f"/api/v1/events?job_id={job['id']}"]


@pytest.mark.parametrize("value", ["abc", "-1", "1e3", "9" * 21, "12 34", str(2**63)])
@pytest.mark.parametrize("page", [0, 1], ids=["job-page", "all-page"])
def test_a_malformed_last_event_id_on_a_json_page_is_400(alice, history, value, page):
    job, _ = history

    response = alice.get(_pages(job)[page], headers={"Last-Event-ID": value})

    assert list(assert_error(response, 400, "invalid_request")) == ["Last-Event-ID"]


@pytest.mark.parametrize("page", [0, 1], ids=["job-page", "all-page"])
def test_a_last_event_id_on_a_json_page_wins_over_after(alice, history, page):
    job, events = history
    first, *rest = events

    response = alice.get(
        _pages(job)[page], params={"after": 0}, headers={"Last-Event-ID": str(first["id"])}
    )

    assert [event["id"] for event in response.json()["items"]] == [e["id"] for e in rest]


@pytest.mark.parametrize("page", [0, 1], ids=["job-page", "all-page"])
def test_a_blank_last_event_id_on_a_json_page_is_ignored(alice, history, page):
    job, events = history

    response = alice.get(_pages(job)[page], headers={"Last-Event-ID": ""})

    assert [event["id"] for event in response.json()["items"]] == [e["id"] for e in events]


# A date-time on the first day of year 1 with a positive offset (or the last of 9999 with a
# negative one) is valid RFC 3339, but outside years 1-9999 in UTC: a 400 the document did not
# state (it said only "up to the end of year 9999", and only for epoch milliseconds).


@pytest.mark.parametrize(
    ("run_at", "status"),
    [
        ("0001-01-01T00:00:00.0+03:04", 400),
        ("9999-12-31T23:59:59-01:00", 400),
        ("0001-01-01T00:00:00+00:00", 201),
        ("0001-01-01T05:00:00+03:00", 201),
        ("9999-12-31T23:59:59.999Z", 201),
    ],
)
def test_a_date_time_outside_years_1_to_9999_in_utc_is_400_as_the_document_says(
    served, alice, run_at, status
):
    response = alice.post("/api/v1/jobs", json={"type": "t", "run_at": run_at})

    assert response.status_code == status, response.text
    if status == 400:
        assert list(response.json()["error"]["details"]) == ["run_at"]
    create_schema = served["components"]["schemas"]["JobCreate"]["properties"]["run_at"]
    assert "from the start of year 1" in json.dumps(create_schema)
