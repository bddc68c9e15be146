"""The packages' module names: none shadows a standard-library module (a script run from
inside a package folder, or a tool that puts it on sys.path, would import ours instead)."""

from __future__ import annotations

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
