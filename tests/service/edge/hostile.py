"""Hostile requests for the tests of issue 7 (one request's bad data never fails anyone else's):
the errors the edge answers them with, everything written so far (to show nothing was), raw
requests as an attacker sends them, and hostile JSON (hypothesis strategies) placed in bodies.

Bodies are written as raw text, so that they can hold what Python's json never emits: numbers
that overflow to infinity (1e400), integers past 64 bits or past Python's 4,300-digit limit,
lone surrogate escapes ("\\ud800") in strings and keys, and nesting past 64 levels, next to
ordinary values and values right at the limits.
"""

from __future__ import annotations

import copy
import dataclasses
import http.client
import json
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import httpx
from hypothesis import HealthCheck, event, note, settings
from hypothesis import strategies as st

from tests.support import LiveServer, claim, create

JSON_HEADERS = {"content-type": "application/json"}
SSE = {"Accept": "text/event-stream"}
FINITE = "must be a finite number"
INT64 = "must be an integer from -9223372036854775808 to 9223372036854775807"
UNICODE = "not valid Unicode"
TOO_DEEP = "nests objects and arrays deeper than 64 levels"
EDGE_PROBLEMS = (FINITE, INT64, UNICODE, TOO_DEEP)
MAX_INT64 = 2**63 - 1
MAX_DEPTH = 64  # levels of objects and arrays in a body, the body itself included


# What the answers must be, and what was written.


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["details"], dict)
    details: dict[str, Any] = body["error"]["details"]
    return details


def assert_names(response: httpx.Response, path: str, problem: str) -> None:
    """A 400 whose details name exactly the field `path`, with `problem` in its message."""
    details = assert_error(response, 400, "invalid_request")
    assert list(details) == [path], details
    assert problem in details[path]


def event_ids(admin: httpx.Client, after: int = 0) -> list[int]:
    """The ids of every event after `after`, across pages."""
    ids: list[int] = []
    while True:
        page = admin.get("/api/v1/events", params={"after": after, "limit": 1000}).json()
        ids += [event["id"] for event in page["items"]]
        after = page["next_after"]
        if not page["has_more"]:
            return ids


def footprint(admin: httpx.Client) -> tuple[int, list[int]]:
    """Everything written so far: the number of live jobs and the ids of all events."""
    return admin.get("/api/v1/jobs", params={"limit": 1}).json()["total"], event_ids(admin)


# Requests.


def nest(levels: int, inner: str = "") -> str:
    return "[" * levels + inner + "]" * levels


def raw_get(server: LiveServer, target: str, sub: str = "alice") -> httpx.Response:
    """A GET with the target sent exactly as written (http.client), as an attacker sends it."""
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", target, headers={"Authorization": f"Bearer {server.token(sub)}"})
        answer = connection.getresponse()
        return httpx.Response(answer.status, headers=answer.getheaders(), content=answer.read())
    finally:
        connection.close()


def open_stream(client: httpx.Client, path: str, headers: dict[str, str]) -> httpx.Response:
    """A stream's answer, read unless it is a live stream (closed unread: it never ends)."""
    with client.stream("GET", path, headers=SSE | headers, timeout=5) as response:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
    return response


def running_job(owner: httpx.Client, worker: httpx.Client, lease: float = 600) -> dict[str, Any]:
    """A job of `owner`, of a type of its own, claimed by `worker` (lease: `["lease"]["token"]`)."""
    job_type = f"run.{uuid.uuid4().hex[:12]}"
    create(owner, type=job_type)
    claimed = claim(worker, [job_type], lease=lease)
    assert claimed is not None
    return claimed


# Hostile JSON: fragments of raw text, and what the store can make of them.

Path = tuple[str | int, ...]


@dataclasses.dataclass(frozen=True)
class Fragment:
    """A piece of raw JSON text, whether the store could hold every value in it, and how many
    levels of objects and arrays it nests (0 for a scalar)."""

    text: str
    storable: bool
    depth: int
    kind: str = "scalar"  # "object", "array" or "scalar"

    def fits(self, at: Path) -> bool:
        """Whether the store can hold it at `at`: its values, and its depth under the body's."""
        return self.storable and len(at) + self.depth <= MAX_DEPTH

    @property
    def value(self) -> Any:
        return json.loads(self.text)


# Ordinary values, and values right at the limits: the store holds them all.


def _depth(value: Any) -> int:
    if isinstance(value, dict | list):
        items = value.values() if isinstance(value, dict) else value
        return 1 + max(map(_depth, items), default=0)
    return 0


def _plain(value: Any) -> Fragment:
    kind = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "scalar"
    return Fragment(json.dumps(value), True, _depth(value), kind)


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
ordinary = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
).map(_plain)
at_the_limits = st.sampled_from(
    [
        *[str(2**63 - 1), str(-(2**63)), "1.7976931348623157e308", "5e-324", "1e-400", "-0.0"],
        *[r'"\ud83d\ude00"', r'"\uDBFF\uDFFF"'],  # surrogate pairs: real characters
    ]
).map(lambda text: Fragment(text, True, 0))

# Values the store cannot hold.

infinite = st.sampled_from(["1e400", "-1e400", "1E999", "-2e308", "1" + "0" * 400 + ".5"]).map(
    lambda text: Fragment(text, False, 0)
)
too_big = (
    st.integers(min_value=2**63, max_value=2**256)
    | st.integers(min_value=-(2**256), max_value=-(2**63) - 1)
    | st.just(int("9" * 400))
).map(lambda n: Fragment(str(n), False, 0))
too_many_digits = st.just(Fragment("9" * 5000, False, 0))  # Python refuses past 4,300 digits
_lone_surrogate = st.integers(0xD800, 0xDFFF).map(lambda code: f"\\u{code:04x}")


def _string_with(escape: str, before: str, after: str) -> str:
    return json.dumps(before)[:-1] + escape + json.dumps(after)[1:]


lone_surrogate = st.builds(
    lambda escape, before, after: Fragment(_string_with(escape, before, after), False, 0),
    _lone_surrogate,
    st.text(max_size=4),
    st.text(max_size=4),
)
_keys = st.text(max_size=5).map(lambda key: Fragment(json.dumps(key), True, 0)) | st.builds(
    lambda escape, before: Fragment(_string_with(escape, before, ""), False, 0),
    _lone_surrogate,
    st.text(max_size=3),
)


def nested(levels: int, bracket: str, inner: Fragment) -> Fragment:
    if bracket == "[":
        text = "[" * levels + inner.text + "]" * levels
    else:
        text = '{"k":' * levels + inner.text + "}" * levels
    kind = "array" if bracket == "[" else "object"
    return Fragment(text, inner.storable, levels + inner.depth, kind)


leaves = st.one_of(
    ordinary, at_the_limits, infinite, too_big, too_many_digits, lone_surrogate
) | st.builds(  # nesting around the limit, or far past it (the decoder's own limit: ~1000)
    nested,
    st.integers(55, 70) | st.integers(1, 1500),
    st.sampled_from("[{"),
    ordinary | infinite | lone_surrogate,
)


def array(items: list[Fragment]) -> Fragment:
    return Fragment(
        "[" + ",".join(item.text for item in items) + "]",
        all(item.storable for item in items),
        1 + max((item.depth for item in items), default=0),
        "array",
    )


def _object(pairs: list[tuple[Fragment, Fragment]]) -> Fragment:
    return Fragment(
        "{" + ",".join(f"{key.text}:{value.text}" for key, value in pairs) + "}",
        all(key.storable and value.storable for key, value in pairs),
        1 + max((value.depth for _, value in pairs), default=0),
        "object",
    )


_composed = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=3).map(array)
        # Keys unique as text: with a repeated key, JSON keeps the last value only.
        | st.lists(st.tuples(_keys, children), max_size=3, unique_by=lambda kv: kv[0].text).map(
            _object
        )
    ),
    max_leaves=6,
)


def _bury(bad: Fragment, brackets: list[str], neighbour: Fragment) -> Fragment:
    """`bad` inside a few objects and arrays, next to an ordinary value: `{"a": [1, bad]}`."""
    for bracket in reversed(brackets):
        if bracket == "[":
            bad = array([neighbour, bad])
        else:
            bad = _object([(Fragment('"a"', True, 0), neighbour), (Fragment('"b"', True, 0), bad)])
    return bad


# Whole values, and bad ones buried inside objects (every field that takes an object).
hostile = _composed | st.builds(
    _bury,
    infinite | too_big | lone_surrogate | too_many_digits,
    st.lists(st.sampled_from("[{"), min_size=1, max_size=3).map(lambda b: ["{", *b]),
    ordinary,
)

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


# Placing a fragment in a body, and sending it.

_SLOT = "\x00hostile\x00"  # where the fragment goes in a body; json.dumps escapes it as below
_SLOT_TEXT = json.dumps(_SLOT)
LOG_BASE = {"level": "info", "message": "m"}
ENTRIES_BASE = {"entries": [dict(LOG_BASE), dict(LOG_BASE)]}
FAIL_BASE = {"error": {"message": "m", "code": "c", "details": None}, "retry": False}


def body_text(base: Any, at: Path, fragment: Fragment) -> str:
    """`base` as JSON, with `fragment` as the value at `at` (the whole body when `at` is ())."""
    if not at:
        return fragment.text
    body = copy.deepcopy(base)
    holder = body
    for step in at[:-1]:
        holder = holder[step]
    holder[at[-1]] = _SLOT
    text = json.dumps(body)
    assert text.count(_SLOT_TEXT) == 1
    return text.replace(_SLOT_TEXT, fragment.text)


def label(at: Path) -> str:
    """The field as a 400's details name it: `children[1].payload`."""
    name = ""
    for step in at:
        name += f"[{step}]" if isinstance(step, int) else f".{step}" if name else step
    return name


def field_paths(fields: list[str], *, under: Path = ()) -> list[Path]:
    return [(*under, field) for field in fields]


Bystander = Callable[[], "Future[httpx.Response]"]


def send(
    client: httpx.Client,
    bystander: Bystander,
    method: str,
    path: str,
    base: Any,
    at: Path,
    fragment: Fragment,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """The hostile request, with a bystander's create at the same time; checks both."""
    content = body_text(base, at, fragment)
    event(f"{'fits' if fragment.fits(at) else 'refused'}: {label(at) or 'body'}")
    note(f"{method} {path} {content[:2000]}")
    calm = bystander()
    response = client.request(method, path, content=content, headers=JSON_HEADERS | (headers or {}))
    assert response.status_code < 500, (content[:500], response.text)
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, response.text
        assert set(body["error"]) == {"code", "message", "details"}
        assert isinstance(body["error"]["details"], dict)
    if not fragment.fits(at):
        # Refused at the edge, before any other check: one problem, the value's own, named.
        assert response.status_code == 400, (content[:500], response.text)
        details = response.json()["error"]["details"]
        assert len(details) == 1, details
        [(key, problem)] = details.items()
        if key != "body":  # "body": the decoder's own refusal (too deep, too many digits)
            assert any(edge in problem for edge in EDGE_PROBLEMS), details
            # The root's own keys are named bare (`a[0]`, not `body.a[0]`).
            assert key.startswith(label(at)) or not at, details
    bystanders = calm.result(timeout=30)
    assert bystanders.status_code == 201, bystanders.text
    return response


def report(
    worker: httpx.Client,
    bystander: Bystander,
    claimed: dict[str, Any],
    action: str,
    base: Any,
    at: Path,
    fragment: Fragment,
) -> httpx.Response:
    """A worker's hostile report (`progress`, `logs`, `succeed`, `fail`) on the job it claimed."""
    path = f"/api/v1/jobs/{claimed['job']['id']}/{action}"
    lease = {"Job-Lease": claimed["lease"]["token"]}
    return send(worker, bystander, "POST", path, base, at, fragment, headers=lease)


def accepted(response: httpx.Response, fragment: Fragment, at: Path) -> bool:
    """For a field that takes any JSON: a value the store holds is accepted."""
    if fragment.fits(at):
        assert 200 <= response.status_code < 300, response.text
        return True
    return False
