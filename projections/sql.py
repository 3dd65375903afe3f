"""The read models' SQL, kept in .sql files beside this module."""

from __future__ import annotations

import functools
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


class Cursor(Protocol):
    """A DB-API cursor inside the store's transaction (the writer's, or a rebuild's)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Any: ...


@functools.cache
def schema(filename: str = "schema.sql") -> list[str]:
    """The statements of a schema file (SQLite's by default)."""
    return _split(_read(filename))


@functools.cache
def queries(filename: str = "queries.sql") -> dict[str, str]:
    """The `-- name: x` blocks of a queries file (SQLite's by default), by name."""
    named: dict[str, str] = {}
    name = None
    lines: list[str] = []
    for line in _read(filename).splitlines():
        if line.startswith("-- name:"):
            if name:
                named[name] = "\n".join(lines).strip()
            name, lines = line.removeprefix("-- name:").strip(), []
        elif name:
            lines.append(line)
    if name:
        named[name] = "\n".join(lines).strip()
    return named


def query(name: str) -> str:
    return queries()[name]


def script(name: str) -> list[str]:
    """A named block of several statements, split for drivers that run one at a time."""
    return _split(queries()[name])


def _read(filename: str) -> str:
    return resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")


def _split(text: str) -> list[str]:
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in body.split(";") if statement.strip()]
