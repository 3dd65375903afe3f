"""domain/ stays pure: no I/O libraries, no clock, no randomness (STYLE.md, "domain/")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import domain

DOMAIN_DIR = Path(domain.__file__).parent
MODULES = sorted(DOMAIN_DIR.rglob("*.py"))
FORBIDDEN_IMPORTS = frozenset(
    {
        "aiosqlite",
        "psycopg",
        "httpx",
        "starlette",
        "sse_starlette",
        "jwt",
        "sqlite3",
        "asyncio",
        "os",
        "logging",
        "time",
        "random",
    }
)
# Calls that read a clock: datetime.now(), datetime.utcnow(), date.today(), time.time(), ...
CLOCK_CALLS = frozenset(
    {"now", "utcnow", "today", "monotonic", "perf_counter", "time_ns", "create_timestamp"}
)


def forbidden_imports(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [name for name in names if name.split(".")[0] in FORBIDDEN_IMPORTS]
    return found


def clock_reads(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and (
            func.attr in CLOCK_CALLS
            or (
                func.attr == "time" and isinstance(func.value, ast.Name) and func.value.id == "time"
            )
        ):
            found.append(f"{ast.unparse(func)}() on line {node.lineno}")
    return found


def test_domain_modules_are_found() -> None:
    names = {path.name for path in MODULES}
    assert {"__init__.py", "job.py", "states.py", "errors.py", "retry.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(DOMAIN_DIR)))
def test_domain_module_imports_no_io_library(path: Path) -> None:
    assert forbidden_imports(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(DOMAIN_DIR)))
def test_domain_module_never_reads_a_clock(path: Path) -> None:
    assert clock_reads(path.read_text(encoding="utf-8")) == []


# The checks themselves must bite, or the tests above pass vacuously.


@pytest.mark.parametrize(
    "source",
    [
        "import os",
        "import os.path",
        "import asyncio as aio",
        "import json, sqlite3",
        "from psycopg.rows import dict_row",
        "from starlette import responses",
        "from sse_starlette.sse import EventSourceResponse",
        "import jwt",
        "from random import random",
        "from time import monotonic",
        "if TYPE_CHECKING:\n    import aiosqlite",
        "def f():\n    import logging",
    ],
)
def test_forbidden_import_is_caught(source: str) -> None:
    assert forbidden_imports(source)


@pytest.mark.parametrize(
    "source",
    [
        "import datetime",
        "from datetime import datetime, timedelta",
        "from eventsourcing.domain import Aggregate",
        "from domain import errors",
        "from . import errors",
        "import osmosis",
        "import timeit_like",
    ],
)
def test_allowed_import_passes(source: str) -> None:
    assert forbidden_imports(source) == []


@pytest.mark.parametrize(
    "source",
    [
        "datetime.now(UTC)",
        "datetime.datetime.utcnow()",
        "date.today()",
        "time.time()",
        "time.monotonic()",
        "Job.Event.create_timestamp()",
    ],
)
def test_clock_read_is_caught(source: str) -> None:
    assert clock_reads(source)


def test_given_time_passes() -> None:
    assert clock_reads("now + timedelta(seconds=1)\nrun_at > now\nstarted.time()") == []
