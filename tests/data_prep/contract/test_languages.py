"""data_prep.contract.languages: OPUS-100 codes, prompt names and recipe overrides."""

from __future__ import annotations

import pytest

from data_prep.contract.languages import (
    OPUS100_LANGUAGES,
    UNSEEN_SUPERVISED,
    UnknownLanguageError,
    language_name,
)


def test_opus100_has_english_and_99_more() -> None:
    assert len(OPUS100_LANGUAGES) == 100
    assert OPUS100_LANGUAGES["en"] == "English"
    assert all(len(code) == 2 and code.islower() for code in OPUS100_LANGUAGES)
    assert len(set(OPUS100_LANGUAGES.values())) == 100


def test_unseen_supervised_are_24_known_codes() -> None:
    assert len(UNSEEN_SUPERVISED) == 24
    assert len(set(UNSEEN_SUPERVISED)) == 24
    assert set(UNSEEN_SUPERVISED) <= set(OPUS100_LANGUAGES)
    assert "en" not in UNSEEN_SUPERVISED


def test_zeroshot_sets_are_known_and_consistent() -> None:
    """The shipped zero-shot recipes (unseen: de nl ru; mixed: those and the seen ar fr zh,
    each with English) and the grid's zero-shot languages agree."""
    from data_prep.recipe import load_recipe
    from eval.directions import load_grid

    unseen = {s for s, _ in load_recipe("opus100-zeroshot-unseen").language_pairs()}
    mixed = {s for s, _ in load_recipe("opus100-zeroshot-mixed").language_pairs()}
    assert unseen == {"de", "nl", "ru"} and unseen < mixed
    assert mixed == set(load_grid("opus100").zeroshot)
    assert mixed <= set(OPUS100_LANGUAGES)


def test_names_used_in_prompts() -> None:
    assert language_name("de") == "German"
    assert language_name("cy") == "Welsh"
    assert language_name("nb") == "Norwegian Bokmål"


def test_unknown_code_error_names_code_and_mapping() -> None:
    with pytest.raises(UnknownLanguageError) as err:
        language_name("xx")
    assert "'xx'" in str(err.value)
    assert "language_names" in str(err.value)
    assert "{xx: Name}" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_overrides_win_and_add() -> None:
    overrides = {"de": "Deutsch", "xx": "Klingon"}
    assert language_name("de", overrides) == "Deutsch"
    assert language_name("xx", overrides) == "Klingon"
    assert language_name("fr", overrides) == "French"
    assert language_name("de", {}) == "German"


def test_one_pair_check_serves_recipes_grids_and_split(tmp_path) -> None:
    """pair_codes/unknown_codes are the one check of direction names: a recipe and a grid
    reject the same malformed pairs (de-de, -en, de-en-fr) and know the same codes."""
    from core.typed_config import ConfigError
    from data_prep.contract.languages import pair_codes, unknown_codes
    from data_prep.recipe import load_recipe
    from eval.directions import load_grid

    assert pair_codes("kha-en") == ("kha", "en")
    assert [pair_codes(p) for p in ("de-de", "-en", "de-en-fr", "deen")] == [None] * 4
    assert unknown_codes(["kha", "en", "xx", "kha"], {"xx": "Ex"}) == ["kha"]
    for bad in ("de-de", "-en", "de-en-fr"):
        grid = tmp_path / "grid.yaml"
        grid.write_text(f"name: g\npairs: [{bad}]\ncorpus: {{format: files, path: x/}}\n")
        with pytest.raises(ConfigError, match="is not src-tgt"):
            load_grid(grid)
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text(
            f"name: r\npairs: [{bad}]\ncorpus: {{format: files, path: x/}}\ntokenizer: t\n"
        )
        with pytest.raises(ConfigError, match="is not of the form src-tgt"):
            load_recipe(recipe)
