"""The shipped recipes load, validate, and run on a tiny OPUS-100 tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.resources import shipped_dir
from data_prep.build import BuildError, build
from data_prep.contract.languages import UNSEEN_SUPERVISED
from data_prep.contract.manifest import read_manifest
from data_prep.recipe import RECIPES_PACKAGE, load_recipe, parse_curriculum

MINI = Path(__file__).resolve().parents[1] / "assets" / "opus-100-mini"


SHIPPED = sorted(shipped_dir(RECIPES_PACKAGE).glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_recipe_is_valid(path: Path) -> None:
    recipe = load_recipe(path.stem)
    assert recipe.name and recipe.pairs
    assert parse_curriculum(recipe.curriculum)


def test_supervised_grid_is_48_directions() -> None:
    recipe = load_recipe("opus100-supervised")
    assert [src for src, _ in recipe.language_pairs()] == list(UNSEEN_SUPERVISED)
    assert {tgt for _, tgt in recipe.language_pairs()} == {"en"}
    assert recipe.directions == "both" and len(recipe.pairs) * 2 == 48


def test_zeroshot_recipes() -> None:
    unseen = load_recipe("opus100-zeroshot-unseen").language_pairs()
    mixed = load_recipe("opus100-zeroshot-mixed").language_pairs()
    assert {s for s, _ in unseen} == {"de", "nl", "ru"}
    assert {s for s, _ in mixed} == {"de", "nl", "ru", "ar", "fr", "zh"}


def test_supervised_recipe_lists_every_missing_pair(tokenizer_dir: Path, tmp_path: Path) -> None:
    recipe = load_recipe(
        "opus100-supervised", [f"corpus.path={MINI}", f"tokenizer={tokenizer_dir}"]
    )
    with pytest.raises(BuildError, match="46 input file") as err:
        build(recipe, tmp_path / "out", progress=False)
    assert "supervised/am-en/opus.am-en-train.am" in str(err.value)
    assert "af-en" not in str(err.value)


def test_supervised_recipe_builds_on_opus_layout(tokenizer_dir: Path, tmp_path: Path) -> None:
    overrides = [f"corpus.path={MINI}", f"tokenizer={tokenizer_dir}", "pairs=[af-en]"]
    overrides += ["curriculum=MT", "workers=1"]
    build(load_recipe("opus100-supervised", overrides), tmp_path / "out", progress=False)
    manifest = read_manifest(tmp_path / "out")
    assert manifest["stages"][0]["by_direction"] == {"mt:af-en": 8, "mt:en-af": 8}
    corpus = (tmp_path / "out" / "corpus" / "af-en.af").read_text(encoding="utf-8")
    assert corpus.splitlines()[0] == "Die hond slaap in die huis."
