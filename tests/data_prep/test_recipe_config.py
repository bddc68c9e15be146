"""data_prep.recipe.load_recipe: a recipe file plus overrides, every problem listed at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.typed_config import ConfigError
from data_prep.recipe import Recipe, load_recipe

GOOD_RECIPE = """\
name: test
pairs: [de-en]
corpus: {format: files, path: data/}
tokenizer: tok
"""


def recipe_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_recipe_good(tmp_path: Path) -> None:
    recipe = load_recipe(recipe_file(tmp_path, GOOD_RECIPE), ["align.aligner=fast_align"])
    assert isinstance(recipe, Recipe)
    assert recipe.language_pairs() == [("de", "en")]
    assert recipe.align.aligner == "fast_align"
    assert recipe.stages() == [["mt", "align"], ["mt"]]


def test_load_shipped_recipe_by_name() -> None:
    recipe = load_recipe("freedict")
    assert recipe.pairs == ["de-en"]


def test_load_recipe_lists_every_problem_at_once(tmp_path: Path) -> None:
    path = recipe_file(
        tmp_path,
        "name: bad\npairs: [xx-en]\ncorpus: {format: files, path: data/}\ntokenizer: tok\n"
        "curriculum: MT+Foo\nratios: {mt: 1.0, bogus: 2.0}\nworkers: 0\n",
    )
    with pytest.raises(ConfigError) as err:
        load_recipe(path)
    problems = err.value.problems
    assert len(problems) == 4, problems
    assert problems[0] == "pairs[0]: unknown language code 'xx'; add it to language_names"
    assert problems[1].startswith("curriculum: curriculum 'MT+Foo': unknown instruction type")
    assert "['foo']" in problems[1]
    assert problems[2].startswith("ratios.bogus: unknown type")
    assert problems[3] == "workers: must be >= 1"
    assert str(err.value).startswith(f"{path}: 4 config problem(s):")


def test_load_recipe_type_problems_at_two_levels(tmp_path: Path) -> None:
    path = recipe_file(
        tmp_path,
        GOOD_RECIPE + "directions: sideways\nclean: {max_chars: many, dedupe: true}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_recipe(path, ["align.links.align=grow"])
    problems = err.value.problems
    assert len(problems) == 4, problems
    joined = "\n".join(problems)
    for key in ("directions", "clean.max_chars", "clean.dedupe", "align.links.align"):
        assert f"{key}: " in joined


def test_recipe_problem_is_listed_once(tmp_path: Path) -> None:
    # An empty corpus path is one mistake; it should be reported as one problem.
    path = recipe_file(tmp_path, GOOD_RECIPE.replace("path: data/", "path: ''"))
    with pytest.raises(ConfigError) as err:
        load_recipe(path)
    assert err.value.problems == ["corpus.path: required for format 'files'"]
