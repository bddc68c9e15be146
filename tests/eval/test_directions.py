"""Grids: per-pair corpora, language names, direction-aware reading of every corpus kind."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.typed_config import ConfigError
from data_prep.contract.readers import CorpusError
from eval.config import EvalConfig
from eval.directions import directions, load_grid, read_test_set, read_test_sets
from eval.run import prepare, score_all

# Asymmetric fixtures: every side is recognisably its own language.
HU = ["Kvittek vagyunk!", "Jó reggelt kívánok.", "Hol van a vasútállomás?"]
EN = ["We are now square!", "Good morning to you.", "Where is the railway station?"]
KHA = ["Khublei shibun.", "Nga sngewbha ia phi.", "Ha ei ka station?"]
EN_KHA = ["Thank you very much.", "I like you.", "Where is the station?"]


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def grid_file(tmp_path: Path, grid: dict) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid), encoding="utf-8")
    return path


def test_per_pair_corpora_in_one_grid(tmp_path: Path) -> None:
    write(tmp_path / "hu" / "test.hu", HU)
    write(tmp_path / "hu" / "test.en", EN)
    kha, kha_en = write(tmp_path / "kha" / "t.kha", KHA), write(tmp_path / "kha" / "t.en", EN_KHA)
    grid = load_grid(grid_file(tmp_path, {
        "name": "hu-kha",
        "pairs": ["hu-en", "en-hu", "kha-en", "en-kha"],
        "corpora": {
            "hu-en": {"format": "files", "path": f"{tmp_path}/hu/"},
            "kha-en": {"format": "files", "path": "", "src_file": str(kha),
                       "tgt_file": str(kha_en)},
        },
        "language_names": {"kha": "Khasi"},
    }))  # fmt: skip
    found = {d.name: d for d in directions(grid)}
    assert list(found) == ["hu-en", "en-hu", "kha-en", "en-kha"]
    assert (found["en-kha"].src_name, found["en-kha"].tgt_name) == ("English", "Khasi")
    assert found["en-hu"].group == "en->X" and found["kha-en"].group == "X->en"
    sets = read_test_sets(list(found.values()))
    assert (sets["hu-en"].sources, sets["hu-en"].references) == (HU, EN)
    assert (sets["en-hu"].sources, sets["en-hu"].references) == (EN, HU)
    assert (sets["kha-en"].sources, sets["kha-en"].references) == (KHA, EN_KHA)
    # src_file/tgt_file under a pair's key follow the key: reversed for en-kha
    assert (sets["en-kha"].sources, sets["en-kha"].references) == (EN_KHA, KHA)


def test_unknown_language_code_gives_the_recipe_hint(tmp_path: Path) -> None:
    path = grid_file(tmp_path, {"name": "g", "pairs": ["kha-en"],
                                "corpus": {"format": "files", "path": "x/"}})  # fmt: skip
    with pytest.raises(ConfigError) as err:
        load_grid(path)
    assert "unknown language code 'kha'; add it to language_names" in str(err.value)
    assert "language_names: {kha: Name}" in str(err.value)
    assert load_grid(path, ["language_names.kha=Khasi"]).language_names == {"kha": "Khasi"}


def test_grid_corpus_problems_listed_at_once(tmp_path: Path) -> None:
    path = grid_file(tmp_path, {
        "name": "g",
        "pairs": ["de-en", "en-de", "hu-en"],
        "corpora": {"de-en": {"format": "files", "path": "de/"},
                    "fr-en": {"format": "files", "path": "fr/"}},
        "max_sentences": 0,
    })  # fmt: skip
    with pytest.raises(ConfigError) as err:
        load_grid(path)
    text = str(err.value)
    assert "corpora.fr-en: not a pair of the grid's directions" in text
    assert "corpus: required, as corpora does not cover hu-en" in text
    assert "max_sentences: must be >= 1" in text
    one_way = grid_file(tmp_path, {"name": "g", "pairs": ["de-en", "en-de"], "corpus": {
        "format": "files", "path": "", "src_file": "a.de", "tgt_file": "a.en"}})  # fmt: skip
    with pytest.raises(ConfigError, match="src_file/tgt_file name no language"):
        load_grid(one_way)


def test_sentence_cap_and_names_travel_with_the_direction(tmp_path: Path) -> None:
    write(tmp_path / "test.hu", HU)
    write(tmp_path / "test.en", EN)
    path = grid_file(tmp_path, {"name": "g", "pairs": ["en-hu"], "max_sentences": 2,
                                "corpus": {"format": "files", "path": f"{tmp_path}/"},
                                "language_names": {"hu": "Magyar"}})  # fmt: skip
    (direction,) = directions(load_grid(path))
    assert (direction.src_name, direction.tgt_name, direction.max_sentences) == (
        "English", "Magyar", 2,
    )  # fmt: skip
    test_set = read_test_set(direction)
    assert (test_set.sources, test_set.references) == (EN[:2], HU[:2])


def test_tsv_direction_follows_the_declared_columns(tmp_path: Path) -> None:
    """en-hu from a tsv whose columns are hu, en: English sources, Hungarian references."""
    tsv = write(tmp_path / "test.tsv", [f"{h}\t{e}" for h, e in zip(HU, EN, strict=True)])
    path = grid_file(tmp_path, {"name": "hu", "pairs": ["en-hu", "hu-en"], "corpus": {
        "format": "tsv", "path": str(tsv), "columns": ["hu", "en"]}})  # fmt: skip
    grid = load_grid(path)
    config = EvalConfig(grid=str(path), out=str(tmp_path / "eval"))
    test_sets = read_test_sets(directions(grid))
    assert (test_sets["en-hu"].sources, test_sets["en-hu"].references) == (EN, HU)
    assert (test_sets["hu-en"].sources, test_sets["hu-en"].references) == (HU, EN)
    # Scored end to end: Hungarian hypotheses for en-hu match the Hungarian references.
    write(tmp_path / "eval" / "hyps" / "en-hu.txt", HU)
    write(tmp_path / "eval" / "hyps" / "hu-en.txt", EN)
    found, test_sets = prepare(config, grid, decoding=False)
    scores = score_all(config, grid, found, test_sets)["directions"]
    assert scores["en-hu"]["bleu"] == 100.0 and scores["hu-en"]["bleu"] == 100.0


def test_alternative_references_are_read_beside_the_references(tmp_path: Path) -> None:
    """`test.en.alt`: each segment's further references, tab-separated, line-aligned."""
    write(tmp_path / "c" / "test.hu", HU)
    write(tmp_path / "c" / "test.en", EN)
    write(
        tmp_path / "c" / "test.en.alt",
        ["We're even now!\tWe are quits!", "", "Where's the station?"],
    )
    grid = load_grid("freedict", [f"corpus.path={tmp_path / 'c'}/", "pairs=[hu-en,en-hu]"])
    sets = read_test_sets(directions(grid))
    assert sets["hu-en"].references == EN
    assert sets["hu-en"].alternatives == [
        ["We're even now!", "We are quits!"],
        [],
        ["Where's the station?"],
    ]
    assert sets["hu-en"].reference_count == 3 and "alternatives" in sets["hu-en"].sha256()
    assert sets["en-hu"].alternatives == [] and sets["en-hu"].reference_count == 1
    capped = load_grid(
        "freedict", [f"corpus.path={tmp_path / 'c'}/", "pairs=[hu-en]", "max_sentences=2"]
    )
    assert read_test_sets(directions(capped))["hu-en"].alternatives == [
        ["We're even now!", "We are quits!"],
        [],
    ]
    write(tmp_path / "c" / "test.en.alt", ["We're even now!"])
    with pytest.raises(CorpusError, match=r"test\.en\.alt has 1 lines but its references have 3"):
        read_test_sets(directions(grid))
