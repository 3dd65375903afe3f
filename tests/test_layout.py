"""The layout's rules, enforced from the source alone (AST, no imports): module size, no import
cycle, the SDK's isolation, every package a real package."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
FIRST_PARTY = ("domain", "projections", "service")
MAX_LINES = 500
MAX_ROOT_MODULES = 12  # directly in service/: the composition root, settings, the CLI entry
SDK_ALLOWED = {"httpx", "httpx_sse"}  # besides the standard library and service.sdk itself


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """What `path` imports, anywhere in it (top level, TYPE_CHECKING, functions), as dotted
    names: `import a.b` gives `a.b`; `from a import b` gives `a.b` (b a module or a name)."""
    parts = module_name(path).split(".")
    package = parts if path.name == "__init__.py" else parts[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def modules(*packages: str) -> dict[str, Path]:
    return {
        module_name(path): path
        for package in packages
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def import_graph(found: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the modules of `found` it imports (a name maps to the module defining it)."""

    def resolve(name: str) -> str | None:
        while name and name not in found:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in found.items():
        targets = {resolve(target) for target in imported(path)}
        graph[name] = {target for target in targets if target is not None and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize(
    "path",
    [
        path
        for package in (*FIRST_PARTY, "tests")
        for path in sorted((ROOT / package).rglob("*.py"))
    ],
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_no_module_is_over_500_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it"


# Not domain/ yet: job.py and retry.py import each other (retry.py only under TYPE_CHECKING).
# Nothing in domain/ or projections/ imports service/: no cycle of service/ runs through them.
@pytest.mark.parametrize("package", ["service", "projections"])
def test_no_import_cycle_between_modules(package: str) -> None:
    """TYPE_CHECKING and function-level imports count: a cycle hidden there is still a cycle."""
    assert cycles(import_graph(modules(package))) == []


def test_the_cycle_check_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": set()}
    assert sorted(cycles(graph)) == [["a", "b", "c"], ["d", "e"]]


def test_the_import_graph_counts_type_checking_imports() -> None:
    graph = import_graph(modules("service"))
    assert "service.edge.routing" in graph["service.app"]
    assert "service.store.writer" in graph["service.edge.runtime"]  # under TYPE_CHECKING only


@pytest.mark.parametrize("path", modules("service/sdk").values(), ids=str)
def test_sdk_imports_nothing_from_the_server(path: Path) -> None:
    """The SDK (client, worker, runner) runs on workers' machines: stdlib, httpx and itself."""
    wrong = sorted(
        name
        for name in imported(path)
        if name.partition(".")[0] not in sys.stdlib_module_names | SDK_ALLOWED
        and not name.startswith("service.sdk.")
    )
    assert not wrong, f"{path.relative_to(ROOT)} imports {wrong}"


def test_service_root_holds_at_most_a_dozen_modules() -> None:
    root = sorted(path.name for path in (ROOT / "service").glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, root


@pytest.mark.parametrize("package", [*FIRST_PARTY, "tests"])
def test_every_folder_of_modules_is_a_package(package: str) -> None:
    """A folder without __init__.py is left out of the wheel (packages.find), and under pytest's
    default import mode its tests collide by basename with another folder's."""
    folders = {path.parent for path in (ROOT / package).rglob("*.py")}
    missing = sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").exists())
    assert not missing


# The store is one package behind a small interface (service/store/base.py): only a backend
# touches the eventsourcing library's recorders, datastores and mappers, and read-model SQL is
# written only in projections/ (a backend's own tables, `stored_events`, are its business).
# Each backend is two modules: sqlite.py and postgres.py (the library's persistence, the
# writes), sqlite_audit.py and postgres_audit.py (where the hash chains' rows are, the audit's
# read scan); library.py is what both take of the library's Application, event_hashes.py what
# both share of the chains' table;
# postgres_listen.py hears other instances' commits (LISTEN).
BACKENDS = (
    "service/store/library.py",
    "service/store/event_hashes.py",
    "service/store/sqlite.py",
    "service/store/sqlite_audit.py",
    "service/store/postgres.py",
    "service/store/postgres_audit.py",
    "service/store/postgres_listen.py",
)
NOT_OUTSIDE_A_BACKEND = (".recorder", ".datastore", ".mapper", "sql.query(", ".execute(")


@pytest.mark.parametrize(
    "path",
    [p for p in modules("service").values() if str(p.relative_to(ROOT)) not in BACKENDS],
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_only_a_store_backend_runs_sql_or_touches_the_library_internals(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    found = [needle for needle in NOT_OUTSIDE_A_BACKEND if needle in source]
    assert not found, (
        f"{path.relative_to(ROOT)} uses {found}: go through service/store or projections/"
    )
