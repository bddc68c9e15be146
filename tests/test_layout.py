"""The packages' module names: none shadows a standard-library module (a script run from
inside a package folder, or a tool that puts it on sys.path, would import ours instead).
Their imports form no circle."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.parent for p in REPO.glob("*/__init__.py") if p.parent.name != "tests")


def test_no_module_shadows_the_standard_library() -> None:
    assert {p.name for p in PACKAGES} >= {"core", "data_prep", "training", "eval"}
    shadowing = [
        str(path.relative_to(REPO))
        for package in PACKAGES
        for path in package.rglob("*.py")
        if path.stem in sys.stdlib_module_names
    ]
    assert shadowing == []


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(node: ast.AST) -> set[str]:
    """Modules a module imports when it is loaded or type-checked: its top-level imports,
    and those under `if` (TYPE_CHECKING) and `try`; lazy imports in functions are not."""
    found: set[str] = set()
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import):
            found |= {alias.name for alias in child.names}
        elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
            found |= {child.module} | {f"{child.module}.{a.name}" for a in child.names}
        elif isinstance(child, (ast.If, ast.Try)):
            found |= _imports(child)
    return found


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of the graph (as the path that closes it), or None."""
    done: set[str] = set()

    def walk(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for dep in sorted(graph[name]):
            circle = walk(dep, [*path, name])
            if circle:
                return circle
        done.add(name)
        return None

    return next((c for name in sorted(graph) if (c := walk(name, [])) is not None), None)


def test_the_packages_import_no_circle() -> None:
    paths = {_module_name(p): p for package in PACKAGES for p in package.rglob("*.py")}
    graph = {
        name: {
            dep
            for dep in _imports(ast.parse(path.read_text(encoding="utf-8")))
            if dep in paths and dep != name
        }
        for name, path in paths.items()
    }
    assert "eval.report" in graph and "eval.report_plots" in graph["eval.report"]
    assert _circle(graph) is None
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
