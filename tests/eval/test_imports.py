"""Every eval module imports on its own, whichever is imported first (a circle between
two modules breaks the one imported first)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

EVAL = Path(__file__).resolve().parents[2] / "eval"
MODULES = sorted(
    f"eval.{p.stem}" for p in EVAL.glob("*.py") if p.stem not in ("__init__", "__main__")
)


def _eval_modules() -> dict[str, object]:
    return {m: mod for m, mod in sys.modules.items() if m == "eval" or m.startswith("eval.")}


@pytest.mark.parametrize("name", MODULES)
def test_module_imports_first(name: str) -> None:
    """With no eval module loaded yet, `name` imports; the modules loaded before are put
    back afterwards (and the fresh ones dropped), so other tests keep the objects they hold."""
    before = _eval_modules()
    for loaded in before:
        del sys.modules[loaded]
    try:
        module = importlib.import_module(name)
        assert module.__name__ == name and sys.modules[name] is module
    finally:
        for loaded in _eval_modules():
            del sys.modules[loaded]
        sys.modules.update(before)  # type: ignore[arg-type]
