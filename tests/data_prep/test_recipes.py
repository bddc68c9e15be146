"""The shipped recipes load, validate, and run on a tiny OPUS-100 tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.resources import shipped_dir
from core.typed_config import ConfigError
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


KHA_EN = "Thank you very much.\tKhublei shibun.\nHow are you?\tKumno phi long?\n"


def write_recipe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_corpora_covering_every_pair_need_no_corpus(tokenizer_dir: Path, tmp_path: Path) -> None:
    """A kha-en tsv with English first (and a BOM, as editors on Windows write it):
    `corpus` may be left out, the build reads Khasi as the source side of kha-en, and
    the BOM does not reach the cleaned corpus."""
    tsv = tmp_path / "kha-en.tsv"
    tsv.write_text("\ufeff" + KHA_EN, encoding="utf-8")
    recipe = write_recipe(
        tmp_path,
        "name: khasi\npairs: [kha-en]\nlanguage_names: {kha: Khasi}\ncurriculum: MT\n"
        f"corpora: {{kha-en: {{format: tsv, path: {tsv}, columns: [en, kha]}}}}\n"
        f"tokenizer: {tokenizer_dir}\nworkers: 1\n",
    )
    manifest = build(load_recipe(recipe), tmp_path / "out", progress=False)
    assert manifest["stages"][0]["by_direction"] == {"mt:en-kha": 2, "mt:kha-en": 2}
    built = tmp_path / "out" / "corpus"
    khasi = (built / "kha-en.kha").read_text(encoding="utf-8")
    assert khasi == "Khublei shibun.\nKumno phi long?\n"
    assert (built / "kha-en.en").read_text(encoding="utf-8").startswith("Thank you very much.\n")


def test_pairs_without_a_corpus_are_named(tmp_path: Path) -> None:
    recipe = write_recipe(
        tmp_path,
        "name: r\npairs: [de-en, nl-en]\ntokenizer: tok\n"
        "corpora: {de-en: {format: files, path: data/}}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_recipe(recipe)
    assert err.value.problems == ["corpus: required for pair nl-en (not covered by corpora)"]


def test_tsv_corpus_columns_are_checked_per_pair(tmp_path: Path) -> None:
    recipe = write_recipe(
        tmp_path,
        "name: r\npairs: [hu-en, de-en]\ntokenizer: tok\n"
        "corpus: {format: tsv, path: de-en.tsv, columns: [de, en]}\n"
        "corpora: {hu-en: {format: tsv, path: hu-en.tsv}}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_recipe(recipe)
    assert [p.split(";")[0] for p in err.value.problems] == ["corpora.hu-en.columns: is missing"]
    with pytest.raises(ConfigError) as err:
        load_recipe(recipe, ["corpora.hu-en.columns=[hu, de]"])
    assert err.value.problems[0].startswith("corpora.hu-en.columns: is ['hu', 'de']")
    assert "[hu, en] in file order" in err.value.problems[0]
    fixed = load_recipe(recipe, ["corpora.hu-en.columns=[en, hu]"])
    assert fixed.corpus_for("hu", "en").columns == ("en", "hu")
