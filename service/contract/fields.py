"""Request bodies as field tables: `check` validates a body against its table and `schema`
writes the same table as JSON Schema, so the 400s and the served document cannot drift apart.
Why a table and not msgspec: README.md, "How it works"."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from service import settings
from service.contract import timestamps
from service.edge import api_errors as errors
from service.edge import bodies

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from service.settings import Limits

    # A limit: fixed, or read from the configured Limits at each request.
    Bound = int | Callable[[Limits], int]

Kind = Literal[
    "string", "integer", "number", "boolean", "enum", "object", "any", "time", "list", "forbidden"
]
Schema = dict[str, Any]
MISSING: Final[Any] = object()  # a field without a default
JSON_VALUE: Final = "#/components/schemas/JsonValue"
_INVALID: Final[Any] = object()
_HAS_NUL: Final[Any] = object()  # a string with U+0000, which no PostgreSQL text column holds
NO_NUL_PATTERN = "^[^\\u0000]*$"  # the same rule in the OpenAPI document
_WITH_OR_NULL = frozenset({"string", "integer", "number"})  # as the 400 messages always read
_DEFAULTS = settings.Limits()


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    """One field of a request body. `min`/`max` bound a string's length, a number's value or a
    list's size; `unit="bytes"` measures a string in UTF-8 bytes instead of characters."""

    name: str
    kind: Kind
    required: bool = False
    nullable: bool = False
    default: Any = MISSING
    min: Bound | None = None
    max: Bound | None = None
    unit: Literal["characters", "bytes"] = "characters"
    pattern: re.Pattern[str] | None = None
    values: tuple[str, ...] = ()  # an enum's, in the documented order
    aliases: tuple[tuple[str, str], ...] = ()  # an enum's other spellings: (alias, value)
    items: Field | Shape | None = None  # a list's
    shape: Shape | None = None  # an object's known fields; None: any JSON object
    noun: str = ""  # a list's items, in its message: "a list of 1 to 100 job types"
    size_limited: bool = False  # at most Limits.field_bytes when encoded as JSON
    message: str | None = None  # where the 400 says it otherwise than its kind's words
    description: str = ""  # "{min}" and "{max}" stand for the limits
    examples: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Shape:
    """A JSON object's fields, checked in this order: a 400's message names the first bad one."""

    fields: tuple[Field, ...]
    unknown: str = "unknown field"  # the problem of a field not in the table
    at_least_one: bool = False  # of the fields
    not_object: tuple[str, str] = ("body", "not an object")  # as a list item: (key, message)
    in_body_order: bool = False  # check the fields in the body's order instead
    bare_unknown: bool = False  # nested, name an unknown field without the path to it
    component: str | None = None  # where nested uses refer to it in the OpenAPI components
    description: str = ""
    names: tuple[str, ...] = dataclasses.field(init=False, repr=False, compare=False)
    by_name: Mapping[str, Field] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(each.name for each in self.fields))
        object.__setattr__(self, "by_name", {each.name: each for each in self.fields})


def parse(
    shape: Shape, body: Any, limits: Limits | None = None, body_bytes: int | None = None
) -> dict[str, Any]:
    """The body's values (defaults filled in), or a 400 naming every bad field."""
    if not isinstance(body, dict):
        raise errors.InvalidRequest(
            "The body must be a JSON object.", details={"body": "not an object"}
        )
    values, problems = check(shape, body, limits, body_bytes)
    if problems:
        first = next(iter(problems))
        raise errors.InvalidRequest(
            f"The request is invalid. {first}: {problems[first]}", details=problems
        )
    return values


def check(
    shape: Shape, body: Any, limits: Limits | None = None, body_bytes: int | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """(values, problems): every problem at once, by field, nested ones as `children[0].type`.

    `body_bytes` is the request body's size, when known: a body under a quarter of
    `limits.field_bytes` cannot hold a field over it, so most bodies skip the encoding.
    """
    problems: dict[str, str] = {}
    values = _check(shape, body, _Context(limits or _DEFAULTS, body_bytes, problems), "")
    return values, problems


@dataclass(slots=True)  # not frozen: built per request, and a frozen __init__ is slower
class _Context:
    limits: Limits
    body_bytes: int | None
    problems: dict[str, str]

    def add(self, where: str, message: str) -> None:
        self.problems.setdefault(where, message)


def _check(shape: Shape, body: Any, ctx: _Context, prefix: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        key, problem = shape.not_object
        ctx.add(prefix + key, problem)
        return {}
    known = shape.by_name
    if not known.keys() >= body.keys():
        for key in sorted(body.keys() - known.keys()):
            ctx.add(key if shape.bare_unknown else prefix + key, shape.unknown)
    if shape.at_least_one and not body.keys() & known.keys():
        ctx.add(prefix + "body", f"give at least one of {', '.join(shape.names)}")
    values: dict[str, Any] = {}
    limits = ctx.limits
    for field in _in_order(shape, body):
        name = field.name
        raw = body.get(name, MISSING)
        if raw is MISSING:
            if field.required:
                ctx.add(prefix + name, message(field, limits))
            elif field.default is not MISSING:
                values[name] = field.default
            continue
        if raw is None and field.nullable:
            values[name] = None
            continue
        value = _CONVERT[field.kind](field, raw, ctx, prefix + name)
        if value is _INVALID:
            ctx.add(prefix + name, message(field, limits))
        elif value is _HAS_NUL:
            ctx.add(prefix + name, bodies.NO_NUL)
        elif field.size_limited and _too_large(raw, ctx):
            ctx.add(prefix + name, f"is larger than {limits.field_bytes} bytes as JSON")
        else:
            values[name] = value
    return values


def _in_order(shape: Shape, body: dict[str, Any]) -> tuple[Field, ...]:
    if not shape.in_body_order:
        return shape.fields
    present = [shape.by_name[key] for key in body if key in shape.by_name]
    return (*present, *(field for field in shape.fields if field.name not in body))


# Each kind's check: the value as the command takes it, or _INVALID.


def _string(field: Field, value: Any, ctx: _Context, _: str) -> Any:
    if not isinstance(value, str):
        return _INVALID
    if "\x00" in value:
        return _HAS_NUL
    if field.pattern is not None and not field.pattern.fullmatch(value):
        return _INVALID
    size = len(value.encode()) if field.unit == "bytes" else len(value)
    return value if _in_range(size, field, ctx.limits) else _INVALID


def _integer(field: Field, value: Any, ctx: _Context, _: str) -> Any:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON does not tell 3 from 3.0
    valid = _is_int(value) and _in_range(value, field, ctx.limits)
    return value if valid else _INVALID


def _number(field: Field, value: Any, ctx: _Context, _: str) -> Any:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return value if number and _in_range(value, field, ctx.limits) else _INVALID


def _enum(field: Field, value: Any, _: _Context, __: str) -> Any:
    value = next((to for alias, to in field.aliases if value == alias), value)
    return value if value in field.values else _INVALID


def _time(_: Field, value: Any, __: _Context, ___: str) -> Any:
    parsed = timestamps.parse(value)
    return _INVALID if parsed is None else parsed


def _object(field: Field, value: Any, ctx: _Context, where: str) -> Any:
    if not isinstance(value, dict):
        return _INVALID
    return value if field.shape is None else _check(field.shape, value, ctx, f"{where}.")


def _list(field: Field, value: Any, ctx: _Context, where: str) -> Any:
    if not isinstance(value, list) or not _in_range(len(value), field, ctx.limits):
        return _INVALID
    item = field.items
    if isinstance(item, Shape):
        return [_check(item, each, ctx, f"{where}[{i}].") for i, each in enumerate(value)]
    if item is not None:
        check_item = _CONVERT[item.kind]
        if any(check_item(item, each, ctx, where) is _INVALID for each in value):
            return _INVALID
    return value


_CONVERT: Mapping[str, Callable[[Field, Any, _Context, str], Any]] = {
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": lambda _, value, *__: value if isinstance(value, bool) else _INVALID,
    "enum": _enum,
    "object": _object,
    "any": lambda _, value, *__: value,
    "time": _time,
    "list": _list,
    "forbidden": lambda *_: _INVALID,
}


def _too_large(value: Any, ctx: _Context) -> bool:
    # Re-encoding changes a value's size by at most 4x (a number like 9e9), so in a body
    # under a quarter of the limit no value can be over it.
    limit = ctx.limits.field_bytes
    if value is None or (ctx.body_bytes is not None and ctx.body_bytes * 4 <= limit):
        return False
    return bodies.encoded_size(value) > limit


def _bound(bound: Bound | None, limits: Limits) -> int | None:
    return bound(limits) if callable(bound) else bound


def _in_range(value: float, field: Field, limits: Limits) -> bool:
    low, high = field.min, field.max
    if callable(low):
        low = low(limits)
    if callable(high):
        high = high(limits)
    return (low is None or low <= value) and (high is None or value <= high)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def message(field: Field, limits: Limits) -> str:
    """What a 400 says of the field when its value is wrong."""
    if field.message is not None:
        return field.message
    low, high = _bound(field.min, limits), _bound(field.max, limits)
    if field.kind == "string":
        if field.unit == "bytes" or not low:
            text = f"must be a string of at most {high} {field.unit}"
        else:
            text = f"must be a string of {low} to {high} characters"
    elif field.kind in ("integer", "number"):
        article = "an" if field.kind == "integer" else "a"
        text = f"must be {article} {field.kind} from {low} to {high}"
    elif field.kind == "list":
        text = f"must be a list of {low} to {high} {field.noun}"
    else:
        text = _KIND_MESSAGES[field.kind].format(values=", ".join(field.values))
    return f"{text}, or null" if field.nullable and field.kind in _WITH_OR_NULL else text


_KIND_MESSAGES = {
    "boolean": "must be true or false",
    "enum": "must be one of {values}",
    "object": "must be an object",
    "time": timestamps.MESSAGE,
    "forbidden": "is not allowed here",
}


# The JSON Schema of a table, for the OpenAPI document. Limits read from the configuration
# are stated at their defaults, as the whole served document states them.


def schema(shape: Shape, limits: Limits | None = None) -> Schema:
    limits = limits or _DEFAULTS
    shown = [field for field in shape.fields if field.kind != "forbidden"]
    result: Schema = {
        "type": "object",
        "properties": {field.name: field_schema(field, limits) for field in shown},
    }
    required = [field.name for field in shown if field.required]
    if required:
        result["required"] = required
    if shape.description:
        result["description"] = shape.description
    if shape.at_least_one:
        result["minProperties"] = 1
    # An unknown field is a 400 that names it.
    result["additionalProperties"] = False
    return result


def field_schema(field: Field, limits: Limits) -> Schema:
    low, high = _bound(field.min, limits), _bound(field.max, limits)
    result = _KIND_SCHEMAS[field.kind](field, low, high, limits)
    notes = [field.description.replace("{min}", str(low)).replace("{max}", str(high))]
    if field.kind == "any":
        notes.insert(0, "Any JSON value.")
    if field.kind == "string" and field.unit == "bytes":
        notes.append(f"At most {byte_size(high or 0)}.")
    if field.size_limited:
        notes.append(field_limit(limits))
    description = " ".join(note for note in notes if note)
    if field.kind == "time":
        return _nullable(timestamps.schema(description), field.nullable)
    if description:
        result["description"] = description
    if field.default is not MISSING:
        result["default"] = field.default
    if field.examples:
        result["examples"] = list(field.examples)
    return _nullable(result, field.nullable)


def _string_schema(field: Field, low: int | None, high: int | None, _: Limits) -> Schema:
    result: Schema = {"type": "string"}
    if field.pattern is not None:
        result["pattern"] = f"^{field.pattern.pattern}$"
    else:  # U+0000 is refused (`_string`): no PostgreSQL text column holds it
        result["pattern"] = NO_NUL_PATTERN
    if low:
        result["minLength"] = low
    if high is not None:
        # A character is at most 4 bytes in UTF-8: a byte limit is stated as a safe length.
        result["maxLength"] = high // 4 if field.unit == "bytes" else high
    return result


def _list_schema(field: Field, low: int | None, high: int | None, limits: Limits) -> Schema:
    items = field.items
    if isinstance(items, Shape):
        ref = {"$ref": f"#/components/schemas/{items.component}"}
        item = ref if items.component else schema(items, limits)
    else:
        item = field_schema(items, limits) if items is not None else {}
    return {"type": "array", "items": item, "minItems": low, "maxItems": high}


def _object_schema(field: Field, low: int | None, high: int | None, limits: Limits) -> Schema:
    if field.shape is not None:
        return schema(field.shape, limits)
    return {"type": "object", "additionalProperties": {"$ref": JSON_VALUE}}


def _bounded(kind: str) -> Callable[[Field, int | None, int | None, Limits], Schema]:
    def bounded(_: Field, low: int | None, high: int | None, __: Limits) -> Schema:
        limits = {"minimum": low, "maximum": high}
        return {"type": kind} | {key: bound for key, bound in limits.items() if bound is not None}

    return bounded


_KIND_SCHEMAS: Mapping[str, Callable[[Field, int | None, int | None, Limits], Schema]] = {
    "string": _string_schema,
    "integer": _bounded("integer"),
    "number": _bounded("number"),
    "boolean": lambda *_: {"type": "boolean"},
    "enum": lambda field, *_: {
        "type": "string",
        "enum": [*field.values, *(alias for alias, _ in field.aliases)],
    },
    "object": _object_schema,
    "any": lambda *_: {"$ref": JSON_VALUE},
    "time": lambda *_: {},
    "list": _list_schema,
}


def _nullable(result: Schema, nullable: bool) -> Schema:
    if not nullable:
        return result
    if "type" not in result:
        return {"anyOf": [result, {"type": "null"}]}
    widened = {**result, "type": [result["type"], "null"]}
    if "enum" in result:
        widened["enum"] = [*result["enum"], None]
    return widened


def field_limit(limits: Limits) -> str:
    """The size rule of `size_limited` fields, in words."""
    return (
        f"At most {byte_size(limits.field_bytes)} when encoded as JSON (configurable); "
        "over it → 400 naming the field."
    )


def byte_size(count: int) -> str:
    """8192 → "8 KiB", 1048576 → "1 MiB"."""
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"
