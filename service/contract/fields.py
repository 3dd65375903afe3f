"""Request bodies as field tables: `check` validates a body against its table and `schema`
writes the same table as JSON Schema, so the 400s and the served document cannot drift apart.
Why a table and not msgspec: README.md, "How it works"."""

from __future__ import annotations

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
_WITH_OR_NULL = frozenset({"string", "integer", "number"})  # as the 400 messages always read


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

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields)


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
    values = _check(shape, body, _Context(limits or settings.Limits(), body_bytes, problems), "")
    return values, problems


@dataclass(frozen=True, slots=True)
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
    names = shape.names
    for key in sorted(body.keys() - set(names)):
        ctx.add(key if shape.bare_unknown else prefix + key, shape.unknown)
    if shape.at_least_one and not body.keys() & set(names):
        ctx.add(prefix + "body", f"give at least one of {', '.join(names)}")
    values: dict[str, Any] = {}
    for field in _in_order(shape, body):
        where = prefix + field.name
        if field.name not in body:
            if field.required:
                ctx.add(where, message(field, ctx.limits))
            elif field.default is not MISSING:
                values[field.name] = field.default
            continue
        raw = body[field.name]
        value = None if raw is None and field.nullable else _value(field, raw, ctx, where)
        if value is _INVALID:
            ctx.add(where, message(field, ctx.limits))
        elif field.size_limited and _too_large(raw, ctx):
            ctx.add(where, f"is larger than {ctx.limits.field_bytes} bytes as JSON")
        else:
            values[field.name] = value
    return values


def _in_order(shape: Shape, body: dict[str, Any]) -> tuple[Field, ...]:
    if not shape.in_body_order:
        return shape.fields
    position = {key: index for index, key in enumerate(body)}
    return tuple(sorted(shape.fields, key=lambda field: position.get(field.name, len(body))))


def _value(field: Field, value: Any, ctx: _Context, where: str) -> Any:
    """The value as the command takes it, or _INVALID."""
    kind = field.kind
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON does not tell 3 from 3.0
    if kind == "enum":
        value = next((to for alias, to in field.aliases if value == alias), value)
        return value if value in field.values else _INVALID
    if kind == "time":
        parsed = timestamps.parse(value)
        return _INVALID if parsed is None else parsed
    if kind == "list":
        return _items(field, value, ctx, where)
    if kind == "object" and field.shape is not None:
        if not isinstance(value, dict):
            return _INVALID
        return _check(field.shape, value, ctx, f"{where}.")
    valid = _SCALARS[kind](field, value, ctx.limits)
    return value if valid else _INVALID


def _items(field: Field, value: Any, ctx: _Context, where: str) -> Any:
    low, high = _bound(field.min, ctx.limits), _bound(field.max, ctx.limits)
    if not isinstance(value, list) or not _within(len(value), low, high):
        return _INVALID
    item = field.items
    if isinstance(item, Shape):
        return [_check(item, each, ctx, f"{where}[{i}].") for i, each in enumerate(value)]
    if item is not None and not all(_SCALARS[item.kind](item, each, ctx.limits) for each in value):
        return _INVALID
    return value


def _string(field: Field, value: Any, limits: Limits) -> bool:
    if not isinstance(value, str):
        return False
    if field.pattern is not None and not field.pattern.fullmatch(value):
        return False
    size = len(value.encode()) if field.unit == "bytes" else len(value)
    return _within(size, _bound(field.min, limits), _bound(field.max, limits))


def _integer(field: Field, value: Any, limits: Limits) -> bool:
    return _is_int(value) and _within(value, _bound(field.min, limits), _bound(field.max, limits))


def _number(field: Field, value: Any, limits: Limits) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and _within(value, _bound(field.min, limits), _bound(field.max, limits))


_SCALARS: Mapping[str, Callable[[Field, Any, Limits], bool]] = {
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": lambda _, value, __: isinstance(value, bool),
    "enum": lambda field, value, _: value in field.values,
    "object": lambda _, value, __: isinstance(value, dict),
    "any": lambda *_: True,
    "forbidden": lambda *_: False,
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


def _within(value: float, low: int | None, high: int | None) -> bool:
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
    limits = limits or settings.Limits()
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
