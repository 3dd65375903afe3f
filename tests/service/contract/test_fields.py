"""The field tables: check() gives the API's 400s, schema() the served JSON Schema, and the
two agree on which bodies are valid."""

from __future__ import annotations

import dataclasses
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import job as domain_job
from service.contract import fields, timestamps
from service.contract import jobs as validation
from service.contract import workers as worker_validation
from service.edge import api_errors as errors
from service.jobs import commands
from service.openapi import document as openapi
from service.settings import Limits

# Every string that no pattern of its own restricts refuses U+0000 (API.md "Values").
NUL = fields.NO_NUL_PATTERN

SHAPES = {
    "JobCreate": validation.JOB_CREATE,
    "JobCreateChild": validation.JOB_CHILD,
    "JobPatch": validation.JOB_PATCH,
    "CancelRequest": validation.CANCEL,
    "ClaimRequest": worker_validation.CLAIM,
    "ProgressReport": worker_validation.PROGRESS,
    "LogEntry": worker_validation.LOG_ENTRY,
    "LogEntries": worker_validation.LOG_ENTRIES,
    "SuccessReport": worker_validation.SUCCESS,
    "FailureReport": worker_validation.FAILURE,
}
SMALL = fields.Shape(
    fields=(
        fields.Field(name="name", kind="string", required=True, min=1, max=3),
        fields.Field(name="size", kind="integer", min=1, max=5, default=1),
        fields.Field(name="ratio", kind="number", nullable=True, min=0, max=1),
        fields.Field(name="level", kind="enum", values=("b", "a"), aliases=(("x", "a"),)),
        fields.Field(name="blob", kind="any", size_limited=True),
        fields.Field(
            name="note", kind="string", max=lambda limits: limits.log_message_bytes, unit="bytes"
        ),
    ),
)
TINY = Limits(field_bytes=16, log_message_bytes=4)


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        pytest.param({"name": "ok"}, {}, id="valid"),
        pytest.param({}, {"name": "must be a string of 1 to 3 characters"}, id="required"),
        pytest.param(
            {"zz": 1, "name": "long", "size": 9, "bogus": 2},
            {
                "bogus": "unknown field",
                "zz": "unknown field",
                "name": "must be a string of 1 to 3 characters",
                "size": "must be an integer from 1 to 5",
            },
            id="every-problem-at-once-unknown-first-then-table-order",
        ),
        pytest.param(
            {"name": "a", "size": True},
            {"size": "must be an integer from 1 to 5"},
            id="bool-is-not-a-number",
        ),
        pytest.param(
            {"name": "a", "ratio": True},
            {"ratio": "must be a number from 0 to 1, or null"},
            id="nullable-says-or-null",
        ),
        pytest.param({"name": "a", "level": "c"}, {"level": "must be one of b, a"}, id="enum"),
        pytest.param(
            {"name": "a", "blob": "x" * 20},
            {"blob": "is larger than 16 bytes as JSON"},
            id="size-limit",
        ),
        pytest.param({"name": "a", "note": "éé"}, {}, id="bytes-at-the-limit"),
        pytest.param(
            {"name": "a", "note": "ééé"},
            {"note": "must be a string of at most 4 bytes"},
            id="bytes-over-the-limit",
        ),
    ],
)
def test_check_names_every_bad_field(body: dict[str, Any], problems: dict[str, str]) -> None:
    _, found = fields.check(SMALL, body, TINY)
    assert list(found.items()) == list(problems.items())


def test_check_fills_defaults_coerces_and_maps_aliases() -> None:
    values, problems = fields.check(SMALL, {"name": "a", "size": 3.0, "ratio": None, "level": "x"})
    assert problems == {}
    assert values == {"name": "a", "size": 3, "ratio": None, "level": "a"}
    assert type(values["size"]) is int  # JSON does not tell 3 from 3.0


def test_a_small_body_skips_measuring_its_fields() -> None:
    # A body under a quarter of the limit cannot hold a field over it.
    assert fields.check(SMALL, {"name": "a", "blob": "x" * 20}, TINY, body_bytes=4)[1] == {}


def test_children_are_checked_in_place_and_named_by_index() -> None:
    body = {"type": "batch", "children": [{"type": "ok"}, {"type": "Bad", "children": []}, 7]}
    _, problems = fields.check(validation.JOB_CREATE, body)
    assert problems == {
        "children[1].children": "a child cannot have children",
        "children[1].type": "required; lowercase letters, digits, '.', '_', '-', at most 64",
        "children[2].body": "not an object",
    }


def test_worker_bodies_name_nested_unknown_fields_bare_as_they_always_have() -> None:
    body = {"entries": [{"message": "m", "colour": "red"}, "x"], "extra": 1}
    _, problems = fields.check(worker_validation.LOG_ENTRIES, body)
    assert list(problems.items()) == [
        ("extra", "is not a known field"),
        ("colour", "is not a known field"),
        ("entries[1].entry", "must be an object"),
    ]


def test_progress_is_checked_in_the_body_order() -> None:
    _, problems = fields.check(worker_validation.PROGRESS, {"total": -1, "percent": 101})
    assert list(problems) == ["total", "percent"]


def test_patch_needs_at_least_one_field() -> None:
    _, problems = fields.check(validation.JOB_PATCH, {})
    assert problems == {"body": "give at least one of name, starred, metadata"}


def test_parse_raises_one_400_whose_message_names_the_first_field() -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        fields.parse(validation.JOB_CREATE, {"priority": "urgent", "max_attempts": 0})
    assert caught.value.message.startswith("The request is invalid. type: required;")
    assert list(caught.value.details) == ["type", "priority", "max_attempts"]
    with pytest.raises(errors.InvalidRequest) as caught:
        fields.parse(validation.JOB_CREATE, [])
    assert (caught.value.message, caught.value.details) == (
        "The body must be a JSON object.",
        {"body": "not an object"},
    )


def test_schema_of_a_table() -> None:
    assert fields.schema(SMALL, TINY) == {
        "type": "object",
        "properties": {
            "name": {"type": "string", "pattern": NUL, "minLength": 1, "maxLength": 3},
            "size": {"type": "integer", "minimum": 1, "maximum": 5, "default": 1},
            "ratio": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "level": {"type": "string", "enum": ["b", "a", "x"]},
            "blob": {
                "$ref": fields.JSON_VALUE,
                "description": "Any JSON value. At most 16 bytes when encoded as JSON "
                "(configurable); over it → 400 naming the field.",
            },
            # A character is at most 4 bytes: a byte limit is stated as a safe length.
            "note": {
                "type": "string",
                "pattern": NUL,
                "maxLength": 1,
                "description": "At most 4 bytes.",
            },
        },
        "required": ["name"],
        "additionalProperties": False,
    }


def test_schema_states_limits_read_from_the_configuration_at_their_defaults() -> None:
    children = fields.schema(validation.JOB_CREATE)["properties"]["children"]
    assert children["maxItems"] == Limits().children
    assert f"1 to {Limits().children} children" in children["description"]
    assert children["items"] == {"$ref": "#/components/schemas/JobCreateChild"}
    assert "children" not in fields.schema(validation.JOB_CHILD)["properties"]
    run_at = fields.schema(validation.JOB_CREATE)["properties"]["run_at"]
    assert run_at["anyOf"][1] == {"type": "null"}  # nullable without a `type`: anyOf


def test_byte_sizes_in_words() -> None:
    assert [fields.byte_size(n) for n in (8192, 256 * 1024, 1024 * 1024, 1000)] == [
        "8 KiB",
        "256 KiB",
        "1 MiB",
        "1000 bytes",
    ]


# One source: the tables against the domain, the command and the served document.


def test_job_spec_has_exactly_the_creatable_fields_with_the_same_defaults() -> None:
    spec = {field.name: field for field in dataclasses.fields(commands.JobSpec)}
    assert set(spec) == set(validation.JOB_CREATE.names)
    for field in validation.JOB_CREATE.fields:
        if field.default is not fields.MISSING:
            assert spec[field.name].default == field.default, field.name
    created = {field.name for field in dataclasses.fields(domain_job.Job.Created)}
    assert set(validation.JOB_CREATE.names) - {"children"} <= created


def test_progress_report_has_the_domain_progress_fields() -> None:
    assert worker_validation.PROGRESS.names == domain_job.PROGRESS_FIELDS


def test_served_request_schemas_are_the_tables() -> None:
    served = openapi.document()["components"]["schemas"]
    for name in (
        "JobCreate",
        "JobCreateChild",
        "JobPatch",
        "CancelRequest",
        "ClaimRequest",
        "ProgressReport",
        "SuccessReport",
        "FailureReport",
    ):
        assert served[name] == fields.schema(SHAPES[name]), name
    log_lines = [fields.schema(SHAPES["LogEntry"]), fields.schema(SHAPES["LogEntries"])]
    assert served["LogLines"]["oneOf"] == log_lines


# The schema and check() agree on which bodies are valid.


def _validator(shape: fields.Shape) -> jsonschema_rs.Validator:
    root = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": openapi.document()["components"],
        **fields.schema(shape),
    }
    return jsonschema_rs.validator_for(root, validate_formats=True)


VALIDATORS = {name: _validator(shape) for name, shape in SHAPES.items()}
EXAMPLES: dict[str, tuple[list[Any], list[Any]]] = {  # name: (valid bodies, invalid bodies)
    "JobCreate": (
        [
            {"type": "a"},
            {"type": "a.b-c_d", "name": None, "max_attempts": 3.0, "run_at": 0},
            {"type": "a", "children": [{"type": "b", "run_at": "2026-01-01T00:00:00+01:00"}]},
        ],
        [
            {},
            {"type": "A"},
            {"type": "a", "priority": None},
            {"type": "a", "children": []},
            {"type": "a", "children": [{"type": "b", "children": [{"type": "c"}]}]},
            {"type": "a", "max_attempts": True},
            {"type": "a", "run_at": "soon"},
        ],
    ),
    "JobPatch": (
        [{"name": None}, {"starred": False, "metadata": {"k": [1]}}],
        [{}, {"metadata": None}, {"starred": 1}, {"name": ""}],
    ),
    "CancelRequest": ([{}, {"reason": None}, {"reason": "r" * 1000}], [{"reason": ""}, {"x": 1}]),
    "ClaimRequest": (
        [{"types": ["a", "a"]}, {"types": ["a"], "lease_seconds": 1.5, "wait_seconds": 0}],
        [
            {},
            {"types": []},
            {"types": ["A"]},
            {"types": ["a"], "lease_seconds": 0},
            {"types": ["a"], "worker_id": None},
        ],
    ),
    "ProgressReport": (
        [{}, {"percent": 12.5, "total": 3.0, "stage": None}, {"completed": 2**63 - 1}],
        [{"percent": 100.5}, {"total": -1}, {"failed": 2**63}, {"message": "m" * 8193}],
    ),
    "LogEntry": (
        [{"message": ""}, {"message": "m", "level": "warn", "data": [1]}],
        [{}, {"message": "m", "level": None}, {"message": 1}],
    ),
    "LogEntries": ([{"entries": [{"message": "m"}]}], [{"entries": []}, {"entries": [{}]}]),
    "SuccessReport": ([{}, {"result": None, "result_type": None}], [{"result_type": ""}]),
    "FailureReport": (
        [{}, {"error": {}, "retry": False}, {"error": {"code": "x", "details": None}}],
        [{"error": None}, {"error": {"code": ""}}, {"error": {"extra": 1}}, {"retry": None}],
    ),
}


@pytest.mark.parametrize(
    ("name", "body", "valid"),
    [
        pytest.param(name, body, valid, id=f"{name}-{'valid' if valid else 'invalid'}-{i}")
        for name, (good, bad) in EXAMPLES.items()
        for valid, bodies in ((True, good), (False, bad))
        for i, body in enumerate(bodies)
    ],
)
def test_schema_and_check_agree_on_examples(name: str, body: Any, valid: bool) -> None:
    assert (fields.check(SHAPES[name], body)[1] == {}) is valid
    assert VALIDATORS[name].is_valid(body) is valid


def test_where_the_schema_is_knowingly_stricter_than_check() -> None:
    # JSON Schema counts characters, the server bytes: 8 KiB is stated as 2048 characters.
    long = {"message": "m" * 3000}
    assert fields.check(worker_validation.LOG_ENTRY, long)[1] == {}
    assert not VALIDATORS["LogEntry"].is_valid(long)
    # Epoch milliseconds are also taken as a string of digits, which `date-time` is not.
    digits = {"type": "a", "run_at": "1700000000000"}
    assert fields.check(validation.JOB_CREATE, digits)[1] == {}
    assert not VALIDATORS["JobCreate"].is_valid(digits)


def _candidates(field: fields.Field) -> list[Any]:
    """Values on and around the field's rules, and some of the wrong type."""
    low, high = (bound(Limits()) if callable(bound) else bound for bound in (field.min, field.max))
    junk: list[Any] = [None, True, 0, -1.5, "", "x", [], {}]
    if field.kind == "string":
        lengths = [n for n in (low, high // 4 if high and field.unit == "bytes" else high) if n]
        over = [high + 1] if high else []
        return [*junk, *("a" * n for n in lengths + over), *field.examples, "A", "a" * 65]
    if field.kind in ("integer", "number"):
        assert low is not None and high is not None
        halves = [low + 0.5, high - 0.5] if high < 2**53 else []  # exact as floats
        return [*junk, low, high, low - 1, high + 1, float(low), *halves]
    if field.kind == "enum":
        return [*junk, *field.values, *(alias for alias, _ in field.aliases), "X"]
    if field.kind == "time":
        return [
            *junk,
            0,
            12.0,
            timestamps.MAX_MS,
            timestamps.MAX_MS + 1,
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00",
            "9999-12-31T23:59:59.999Z",
        ]
    return [*junk, {"k": [1]}, [1, "a"]]


def _value(shape: fields.Shape, field: fields.Field, *, valid: bool) -> st.SearchStrategy[Any]:
    """A value for the field: one it takes (as check() judges the field alone), or any."""
    junk: st.SearchStrategy[Any] = st.sampled_from([None, "x", [], {}, 0])
    if field.kind == "list":
        item = field.items
        if isinstance(item, fields.Shape):
            each = _bodies(item, mutate=not valid)
        else:
            assert item is not None
            each = _value(fields.Shape(fields=(item,)), item, valid=valid)
        high = field.max(Limits()) if callable(field.max) else field.max
        assert high is not None
        sizes = [high] if valid else [0, high, high + 1]
        # Short lists, and lists on the size limits (one item repeated).
        items = st.lists(each, min_size=1 if valid else 0, max_size=3) | st.builds(
            lambda one, size: [one] * size, each, st.sampled_from(sizes)
        )
        return items if valid else items | junk
    if field.shape is not None:
        nested = _bodies(field.shape, mutate=not valid)
        return nested if valid else nested | junk
    values = _candidates(field)
    if valid:
        values = [value for value in values if _takes(shape, field, value)]
    return st.sampled_from(values)


def _takes(shape: fields.Shape, field: fields.Field, value: Any) -> bool:
    problems = fields.check(shape, {field.name: value})[1]
    return not any(key == field.name or key.startswith(field.name + "[") for key in problems)


@st.composite
def _bodies(draw: st.DrawFn, shape: fields.Shape, *, mutate: bool = True) -> dict[str, Any]:
    """A body of values each field takes, but for at most one field, which may hold anything."""
    shown = [field for field in shape.fields if field.kind != "forbidden"]
    required = {f.name: _value(shape, f, valid=True) for f in shown if f.required}
    optional = {f.name: _value(shape, f, valid=True) for f in shown if not f.required}
    body = draw(st.fixed_dictionaries(required, optional=optional))
    if mutate and draw(st.booleans()):
        field = draw(st.sampled_from(shape.fields))
        if draw(st.booleans()):
            body[field.name] = draw(_value(shape, field, valid=False))
        elif draw(st.booleans()):
            body.pop(field.name, None)
        else:
            body["bogus"] = 1
    return body


@pytest.mark.parametrize("name", SHAPES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_schema_accepts_exactly_what_check_accepts(name: str, data: st.DataObject) -> None:
    body = data.draw(_bodies(SHAPES[name]))
    accepted = fields.check(SHAPES[name], body)[1] == {}
    assert VALIDATORS[name].is_valid(body) is accepted, body


def test_job_type_pattern_is_the_documented_one() -> None:
    documented = openapi.document()["components"]["schemas"]["Job"]["properties"]["type"]
    assert documented["pattern"] == f"^{validation.TYPE_PATTERN.pattern}$"
