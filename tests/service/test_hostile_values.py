"""Hostile JSON in every body field of every route that reads a body (issue 7).

Bodies are written as raw text, so that they can hold what Python's json never emits: numbers
that overflow to infinity (1e400), integers past 64 bits or past Python's 4,300-digit limit,
lone surrogate escapes ("\\ud800") in strings and keys, and nesting past 64 levels, next to
ordinary values and values right at the limits. Whatever the value, on every route:

- the answer is never a 5xx, and a 4xx is in the API's error shape;
- a value the store cannot hold is a 400 naming the field it is in;
- a value it can hold, in a field that takes any JSON, is accepted and served back unchanged;
- another owner's create, sent at the same time, succeeds.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st

from tests.conftest import LiveServer, make_settings
from tests.service import calls, workers

MAX_DEPTH = 64  # levels of objects and arrays in a body, the body itself included
JSON_HEADERS = {"content-type": "application/json"}
_SLOT = "\x00hostile\x00"  # where the fragment goes in a body; json.dumps escapes it as below
_SLOT_TEXT = json.dumps(_SLOT)

Path = tuple[str | int, ...]
EDGE_PROBLEMS = (
    "must be a finite number",
    "must be an integer from -9223372036854775808 to 9223372036854775807",
    "not valid Unicode",
    "nests objects and arrays deeper than 64 levels",
)


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


def _nested(levels: int, bracket: str, inner: Fragment) -> Fragment:
    if bracket == "[":
        text = "[" * levels + inner.text + "]" * levels
    else:
        text = '{"k":' * levels + inner.text + "}" * levels
    kind = "array" if bracket == "[" else "object"
    return Fragment(text, inner.storable, levels + inner.depth, kind)


leaves = st.one_of(
    ordinary, at_the_limits, infinite, too_big, too_many_digits, lone_surrogate
) | st.builds(  # nesting around the limit, or far past it (the decoder's own limit: ~1000)
    _nested,
    st.integers(55, 70) | st.integers(1, 1500),
    st.sampled_from("[{"),
    ordinary | infinite | lone_surrogate,
)


def _array(items: list[Fragment]) -> Fragment:
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
        st.lists(children, max_size=3).map(_array)
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
            bad = _array([neighbour, bad])
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


# Placing a fragment in a body.


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


# The server, the hostile owner, and the owner whose requests must go on succeeding.


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[LiveServer]:
    server = LiveServer(make_settings(tmp_path_factory.mktemp("hostile"))).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mallory(live):
    with live.client("mallory") as client:
        yield client


@pytest.fixture(scope="module")
def worker(live):
    with live.client("w-mallory", "worker") as client:
        yield client


@pytest.fixture(scope="module")
def bystander(live):
    """Another owner's creates, each sent on another thread while a hostile request is."""
    with live.client("carol") as carol, ThreadPoolExecutor(max_workers=1) as pool:

        def create() -> Future[httpx.Response]:
            body = {"type": "calm.t", "payload": {"n": 1}}
            return pool.submit(carol.post, "/api/v1/jobs", json=body)

        yield create


def running_job(mallory: httpx.Client, worker: httpx.Client) -> dict[str, Any]:
    """A job of mallory's, of a type of its own, claimed by `worker`."""
    job_type = f"hv.{uuid.uuid4().hex[:12]}"
    calls.create(mallory, type=job_type)
    claimed = workers.claim(worker, [job_type], lease=3600)
    assert claimed is not None
    return claimed


@pytest.fixture(scope="module")
def leased(mallory, worker):
    """A running job for the reports that leave it running (progress, logs)."""
    return running_job(mallory, worker)


def send(
    client: httpx.Client,
    bystander: Any,
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


def accepted(response: httpx.Response, fragment: Fragment, at: Path) -> bool:
    """For a field that takes any JSON: a value the store holds is accepted."""
    if fragment.fits(at):
        assert 200 <= response.status_code < 300, response.text
        return True
    return False


SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

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
    return calls.create(mallory, type="hv.patched")


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


@SETTINGS
@given(at=st.sampled_from([(), ("reason",)]), fragment=hostile)
def test_cancel_with_hostile_values(mallory, bystander, at, fragment):
    job = calls.create(mallory, type="hv.cancel")
    path = f"/api/v1/jobs/{job['id']}"

    response = send(mallory, bystander, "POST", f"{path}/cancel", {}, at, fragment)

    status = mallory.get(path).json()["status"]
    assert status == ("cancelled" if response.status_code == 200 else "pending")


# POST /api/v1/workers/claim


CLAIM_BASE = {"types": ["hv.nothing"], "worker_id": "w", "lease_seconds": 30, "wait_seconds": 0}


def _would_wait(at: Path, fragment: Fragment) -> bool:
    """A valid wait would hold the test for up to 30 s: nothing of type hv.nothing is due."""
    if at != ("wait_seconds",) or not fragment.storable or fragment.depth:
        return False
    value = fragment.value
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 30


@SETTINGS
@given(
    at=st.sampled_from([(), ("types",), ("types", 0), *field_paths(list(CLAIM_BASE)[1:])]),
    fragment=hostile,
)
def test_claim_with_hostile_values(worker, bystander, at, fragment):
    assume(not _would_wait(at, fragment))

    send(worker, bystander, "POST", "/api/v1/workers/claim", CLAIM_BASE, at, fragment)


# POST /api/v1/jobs/{id}/progress and /logs: the job stays running.


def _report(worker, bystander, leased, action, base, at, fragment) -> httpx.Response:
    path = f"/api/v1/jobs/{leased['job']['id']}/{action}"
    lease = {"Job-Lease": leased["lease"]["token"]}
    return send(worker, bystander, "POST", path, base, at, fragment, headers=lease)


@SETTINGS
@given(
    at=st.sampled_from(
        [(), *field_paths(["percent", "stage", "message", "total", "completed", "failed"])]
    ),
    fragment=hostile,
)
def test_progress_with_hostile_values(worker, bystander, leased, at, fragment):
    _report(worker, bystander, leased, "progress", {}, at, fragment)


LOG_BASE = {"level": "info", "message": "m"}
ENTRIES_BASE = {"entries": [dict(LOG_BASE), dict(LOG_BASE)]}


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

    response = _report(worker, bystander, leased, "logs", base, at, fragment)

    if at in (("data",), ("entries", 1, "data")):
        accepted(response, fragment, at)


# POST /api/v1/jobs/{id}/succeed and /fail: a fresh running job for each example.


@SETTINGS
@given(at=st.sampled_from([(), ("result",), ("result_type",)]), fragment=hostile)
def test_succeed_with_hostile_values(mallory, worker, bystander, at, fragment):
    claimed = running_job(mallory, worker)

    response = _report(worker, bystander, claimed, "succeed", {}, at, fragment)

    if at == ("result",) and accepted(response, fragment, at):
        assert response.json()["status"] == "succeeded"
        assert response.json()["result"] == fragment.value
    job = mallory.get(f"/api/v1/jobs/{claimed['job']['id']}").json()
    assert job["status"] == ("succeeded" if response.status_code == 200 else "running")


FAIL_BASE = {"error": {"message": "m", "code": "c", "details": None}, "retry": False}


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
    claimed = running_job(mallory, worker)

    response = _report(worker, bystander, claimed, "fail", FAIL_BASE, at, fragment)

    if at == ("error", "details") and accepted(response, fragment, at):
        assert response.json()["error"]["details"] == fragment.value
    job = mallory.get(f"/api/v1/jobs/{claimed['job']['id']}").json()
    assert (job["status"] == "running") == (response.status_code != 200)


# Values the store can hold, right up to the depth limit, in every field that takes any JSON.

_holdable = st.one_of(
    ordinary, at_the_limits, st.lists(ordinary | at_the_limits, max_size=3).map(_array)
)


def holdable(at: Path, *, objects: bool) -> st.SearchStrategy[Fragment]:
    """Values the store holds at `at`: often exactly as deep as a body may nest there."""

    def deepen(inner: Fragment, data: st.DataObject) -> Fragment:
        room = MAX_DEPTH - len(at) - inner.depth
        levels = data.draw(st.just(room) | st.integers(0, room))
        if objects and inner.kind != "object":
            levels = max(levels, 1)  # an object it must be
        if levels:
            inner = _nested(levels, "{" if objects else data.draw(st.sampled_from("[{")), inner)
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
        job = calls.create(mallory, type="hv.patched")
        response = send(mallory, bystander, "PATCH", f"/api/v1/jobs/{job['id']}", {}, at, fragment)
        assert response.status_code == 200, response.text
        return mallory.get(f"/api/v1/jobs/{job['id']}").json()["metadata"]
    claimed = running_job(mallory, worker)
    base = {"logs": ENTRIES_BASE if at[0] == "entries" else LOG_BASE, "fail": FAIL_BASE}
    response = _report(worker, bystander, claimed, route, base.get(route, {}), at, fragment)
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
