"""The docs: every YAML snippet parses as written, and the reliability page is the one
generated from docs/reliability.yaml, naming tests that exist."""

from __future__ import annotations

import re
import sys

import yaml

from tests.conftest import REPO_ROOT

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
YAML_BLOCK = re.compile(r"^```ya?ml[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)


def yaml_blocks() -> list[tuple[str, str]]:
    found = []
    for page in DOCS:
        text = page.read_text(encoding="utf-8")
        for match in YAML_BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{page.relative_to(REPO_ROOT)}:{line}", match.group(1)))
    return found


def test_every_yaml_snippet_in_the_docs_parses() -> None:
    blocks = yaml_blocks()
    assert blocks, "no ```yaml block found in the docs"
    problems = []
    for where, block in blocks:
        try:
            yaml.safe_load(block)
        except yaml.YAMLError as err:
            problems.append(f"{where}: {err}")
    assert not problems, "\n".join(problems)


def test_reliability_page_is_generated_from_its_source() -> None:
    sys.path.insert(0, str(REPO_ROOT / "docs"))
    try:
        import reliability_table
    finally:
        sys.path.pop(0)
    cases = yaml.safe_load(reliability_table.SOURCE.read_text(encoding="utf-8"))
    assert reliability_table.PAGE.read_text(encoding="utf-8") == reliability_table.render(cases), (
        "docs/reliability.md is out of date: run python docs/reliability_table.py"
    )
    missing = []
    for case in cases:
        assert case["tests"], case["fault"]
        for test in case["tests"]:
            path, name = test.split("::")
            source = (
                (REPO_ROOT / path).read_text(encoding="utf-8")
                if (REPO_ROOT / path).is_file()
                else ""
            )
            if not re.search(rf"^def {re.escape(name)}\(", source, re.MULTILINE):
                missing.append(test)
    assert not missing, f"tests named in docs/reliability.yaml that do not exist: {missing}"
