"""The layout's rules, enforced: what a module may import, read from the source (AST) alone."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
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


def modules(package: str) -> dict[str, Path]:
    return {module_name(path): path for path in sorted((ROOT / package).rglob("*.py"))}


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
