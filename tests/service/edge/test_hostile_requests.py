"""Hostile requests, by hand, on every route that reads a body, a query or a header (issue 13):
bodies that are JSON but not an object, JSON Python reads as something else (a key given
twice, a BOM, numbers spelt 1.0 or 1e2 or -0), charsets other than UTF-8, bytes that are not
UTF-8 in a query or a header, thousands of parameters, odd paths. Every rejection is a 4xx in
the API's error shape and writes nothing; what is accepted is read as JSON's data model says."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.service.edge.hostile import (
    JSON_HEADERS,
    assert_error,
    footprint,
    raw_get,
    running_job,
)
from tests.support import create

JOB = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def admin(shared_server):
    with shared_server.client("root", "admin") as client:
        yield client


@pytest.fixture(scope="module")
def alice(shared_server):
    with shared_server.client("alice") as client:
        yield client


@pytest.fixture(scope="module")
def claimed(alice, worker):
    """A running job of alice's, and its worker's lease header."""
    claim = running_job(alice, worker)
    return claim["job"]["id"], {"Job-Lease": claim["lease"]["token"]}


def _body_routes(alice, claimed) -> list[tuple[str, str, dict[str, str]]]:
    job = create(alice, type="body.t")["id"]
    running, lease = claimed
    on_job = [("PATCH", f"/api/v1/jobs/{job}"), ("POST", f"/api/v1/jobs/{job}/cancel")]
    on_lease = [f"/api/v1/jobs/{running}/{action}" for action in ("progress", "logs", "fail")]
    return [
        ("POST", "/api/v1/jobs", {}),
        *[(method, path, {}) for method, path in on_job],
        ("POST", "/api/v1/workers/claim", {}),
        *[("POST", path, lease) for path in on_lease],
    ]


def _send(client, route, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    method, path, extra = route
    return client.request(
        method, path, content=content, headers={**JSON_HEADERS, **extra, **(headers or {})}
    )


def _client_for(route, alice, worker):
    return worker if "workers" in route[1] or "Job-Lease" in route[2] else alice


# Bodies that are JSON, but not what a route reads.

NOT_OBJECTS = [b'"s"', b"1", b"1.5", b"[]", b'[{"type": "t"}]', b"true", b"null", b'""']


def test_a_body_that_is_json_but_not_an_object_is_400_on_every_route(alice, worker, admin, claimed):
    running, lease = claimed
    for route in _body_routes(alice, claimed):
        client = _client_for(route, alice, worker)
        for content in NOT_OBJECTS:
            before = footprint(admin)

            response = _send(client, route, content)

            details = assert_error(response, 400, "invalid_request")
            assert details == {"body": "not an object"}, (route, content, details)
            assert footprint(admin) == before, (route, content)
    # The worker's lease outlived every refused report.
    assert worker.post(f"/api/v1/jobs/{running}/heartbeat", headers=lease).status_code == 200


@pytest.mark.parametrize("action", ["cancel", "succeed", "fail"])
def test_null_where_a_body_is_optional_is_not_taken_for_no_body(alice, worker, admin, action):
    if action == "cancel":
        client, path, headers = alice, f"/api/v1/jobs/{create(alice)['id']}/cancel", {}
    else:
        claim = running_job(alice, worker)
        client, path = worker, f"/api/v1/jobs/{claim['job']['id']}/{action}"
        headers = {"Job-Lease": claim["lease"]["token"]}
    before = footprint(admin)

    response = client.post(path, content=b"null", headers=JSON_HEADERS | headers)

    assert assert_error(response, 400, "invalid_request") == {"body": "not an object"}
    assert footprint(admin) == before


@pytest.mark.parametrize(
    ("content", "key"),
    [
        pytest.param(b'{"type": "a", "type": "b"}', "type", id="a-field"),
        pytest.param(b'{"type": "t", "payload": {"k": 1, "k": 1}}', "k", id="same-value"),
        pytest.param(b'{"type": "t", "metadata": {"a": {"x": 1, "y": 2, "x": 3}}}', "x", id="deep"),
        pytest.param(
            b'{"type": "t", "children": [{"type": "c", "type": "d"}]}', "type", id="child"
        ),
    ],
)
def test_a_key_given_twice_is_400_naming_it(alice, admin, content, key):
    before = footprint(admin)

    response = alice.post("/api/v1/jobs", content=content, headers=JSON_HEADERS)

    details = assert_error(response, 400, "invalid_request")
    assert details == {"body": f"the key {key!r} is given twice in an object"}
    assert footprint(admin) == before


def test_a_key_given_twice_is_400_on_every_route(alice, worker, admin, claimed):
    for route in _body_routes(alice, claimed):
        before = footprint(admin)

        response = _send(_client_for(route, alice, worker), route, b'{"a": 1, "a": 2}')

        assert assert_error(response, 400, "invalid_request") == {
            "body": "the key 'a' is given twice in an object"
        }, route
        assert footprint(admin) == before


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'\xef\xbb\xbf{"type": "t"}', id="utf8-bom"),
        pytest.param(b'\xff\xfe{\x00"\x00t\x00"\x00:\x001\x00}\x00', id="utf16-bom"),
        pytest.param('{"type": "t", "name": "é"}'.encode("latin-1"), id="latin-1"),
        pytest.param(b'{"type": "t", "name": "\xc0\x80"}', id="overlong-nul"),
        pytest.param(b'{"type": "t", "name": "\xed\xa0\x80"}', id="encoded-surrogate"),
        pytest.param(b'{"type": "t"}\x00', id="trailing-nul-byte"),
    ],
)
def test_a_body_that_is_not_utf8_json_is_400(alice, admin, content):
    before = footprint(admin)

    response = alice.post("/api/v1/jobs", content=content, headers=JSON_HEADERS)

    assert list(assert_error(response, 400, "invalid_request")) == ["body"]
    assert footprint(admin) == before


# Numbers: JSON has one kind; Python reads 1 and 1.0 (and 1e2, and -0) as different things.

INTEGER_FIELD_SPELLINGS = [
    ("1.0", 1),
    ("1e0", 1),
    ("0.1e1", 1),
    ("1E1", 10),
    ("1e2", 100),
    ("100.000", 100),
]


@pytest.mark.parametrize(("spelt", "value"), INTEGER_FIELD_SPELLINGS)
def test_an_integer_field_takes_any_spelling_of_a_whole_number(alice, spelt, value):
    response = alice.post(
        "/api/v1/jobs", content=f'{{"type": "t", "max_attempts": {spelt}}}', headers=JSON_HEADERS
    )

    assert response.status_code == 201, response.text
    assert response.json()["max_attempts"] == value


@pytest.mark.parametrize(
    "spelt",
    ["1.5", "-0", "-0.0", "0", "1e-400", "1e3", "101", "true", '"1"', "[1]", "1e400", "2e19"],
)
def test_an_integer_field_refuses_what_is_not_a_whole_number_in_its_range(alice, admin, spelt):
    before = footprint(admin)

    response = alice.post(
        "/api/v1/jobs", content=f'{{"type": "t", "max_attempts": {spelt}}}', headers=JSON_HEADERS
    )

    assert list(assert_error(response, 400, "invalid_request")) == ["max_attempts"]
    assert footprint(admin) == before


@pytest.mark.parametrize(
    ("spelt", "at"),
    [
        ("1e3", "1970-01-01T00:00:01.000Z"),
        ("1000.0", "1970-01-01T00:00:01.000Z"),
        ("-0.0", "1970-01-01T00:00:00.000Z"),
        ("-0", "1970-01-01T00:00:00.000Z"),
    ],
)
def test_a_time_in_epoch_milliseconds_takes_any_spelling_of_a_whole_number(alice, spelt, at):
    response = alice.post(
        "/api/v1/jobs", content=f'{{"type": "t", "run_at": {spelt}}}', headers=JSON_HEADERS
    )

    assert response.status_code == 201, response.text
    assert response.json()["run_at"] == at


@pytest.mark.parametrize("spelt", ["1.5", "-1", "1e-3", "2.6e14", "true"])
def test_a_time_that_is_not_whole_milliseconds_in_range_is_400(alice, spelt):
    response = alice.post(
        "/api/v1/jobs", content=f'{{"type": "t", "run_at": {spelt}}}', headers=JSON_HEADERS
    )

    assert list(assert_error(response, 400, "invalid_request")) == ["run_at"]


def test_negative_zero_is_kept_in_a_json_value(alice):
    created = alice.post(
        "/api/v1/jobs", content=b'{"type": "t", "payload": [-0.0, -0, 0.0]}', headers=JSON_HEADERS
    )

    assert created.status_code == 201, created.text
    assert alice.get(created.headers["location"]).json()["payload"] == [-0.0, 0, 0.0]


# Media types: JSON is UTF-8 (RFC 8259); a body declared otherwise is refused, not misread.


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
        'application/json; charset="iso-8859-1"',
        "application/json;charset=us-ascii",
        "text/plain; charset=utf-8",
        "application/json, text/plain",
        "multipart/form-data; boundary=x",
    ],
)
def test_a_body_declared_in_another_charset_or_type_is_415(
    alice, worker, admin, claimed, content_type
):
    for route in _body_routes(alice, claimed):
        before = footprint(admin)

        response = _send(
            _client_for(route, alice, worker), route, b"{}", {"content-type": content_type}
        )

        assert_error(response, 415, "unsupported_media_type")
        assert footprint(admin) == before, route


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", 'application/json; charset="UTF-8"', "application/json;"],
)
def test_utf8_declared_any_way_is_accepted(alice, content_type):
    response = alice.post(
        "/api/v1/jobs", content=b'{"type": "t"}', headers={"content-type": content_type}
    )

    assert response.status_code == 201, response.text


# Queries and headers: bytes that are not UTF-8 (percent-encoded), thousands of parameters.


@pytest.mark.parametrize(
    "target",
    [
        "/api/v1/jobs?type=%FF",
        "/api/v1/jobs?sort=%FF",
        "/api/v1/jobs?limit=%FF",
        "/api/v1/jobs?offset=%C0%80",
        "/api/v1/jobs?created_from=%FF",
        "/api/v1/jobs?parent_id=%FF",
        "/api/v1/jobs?cursor=%FF%FE",
        "/api/v1/jobs?%FF=1",
        f"/api/v1/jobs/{JOB}?as_of=%FF",
        f"/api/v1/jobs/{JOB}?include=%FF",
        "/api/v1/events?after=%FF",
        "/api/v1/events?job_id=%FF",
        "/api/v1/events?type=%ED%A0%80",
        "/api/v1/events?limit=%EF%BC%91",  # a full-width 1
        "/api/v1/jobs?" + "&".join(f"p{n}=1" for n in range(3000)),
    ],
)
def test_a_query_that_is_not_utf8_or_unknown_is_a_4xx_in_the_error_shape(shared_server, target):
    response = raw_get(shared_server, target)

    assert response.status_code in (400, 404), response.text
    assert set(response.json()["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize("name", ["owner", "category", "result_type"])
def test_a_free_text_filter_that_is_not_utf8_matches_nothing(shared_server, alice, name):
    create(alice, type="utf.t", category="c")

    response = raw_get(shared_server, f"/api/v1/jobs?{name}=%FF%FE")

    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


def test_a_filter_value_given_thousands_of_times_counts_once(shared_server):
    response = raw_get(shared_server, "/api/v1/jobs?" + "&".join(["type=a.t"] * 3000))

    assert response.status_code == 200, response.text


def _raw(
    server, method: str, path: str, headers: list[tuple[str, bytes]], body: bytes = b""
) -> Any:
    import http.client

    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest(method, path)
        connection.putheader(
            "Authorization", f"Bearer {server.token('alice', 'jobs:read jobs:write worker')}"
        )
        for name, value in headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_header_values_that_are_not_utf8_are_4xx_or_read_as_bytes(shared_server, admin, claimed):
    running, _ = claimed
    before = footprint(admin)
    events = _raw(shared_server, "GET", "/api/v1/events", [("Last-Event-ID", b"\xff1")])
    beat = _raw(
        shared_server, "POST", f"/api/v1/jobs/{running}/heartbeat", [("Job-Lease", b"\xff\xfe")]
    )

    assert events[0] == 400 and b'"Last-Event-ID"' in events[1]
    assert beat[0] == 409 and b'"lease_lost"' in beat[1]
    assert footprint(admin) == before
    # An Idempotency-Key is opaque: its bytes are the key, the same on a retry.
    key = [("Idempotency-Key", b"k\xff\xfe"), ("Content-Type", b"application/json")]
    first = _raw(shared_server, "POST", "/api/v1/jobs", key, b'{"type": "key.t"}')
    again = _raw(shared_server, "POST", "/api/v1/jobs", key, b'{"type": "key.t"}')
    assert (first[0], again[0]) == (201, 200)


# Paths.


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/jobs/" + "a" * 8000,
        "/api/v1/jobs/%FF",
        "/api/v1/jobs/%00",
        "/api/v1/jobs/%2e%2e/jobs",
        f"/api/v1/jobs/{JOB}%2Fbogus",
        "/static/%2e%2e/%2e%2e/service/settings.py",
        "/static/..%2F..%2Fservice%2Fsettings.py",
        "/" + "x/" * 3000,
    ],
)
def test_an_odd_path_is_404_in_the_error_shape(shared_server, path):
    response = raw_get(shared_server, path)

    assert_error(response, 404, "not_found")
