"""data_prep.mixing: how many sentence pairs of each language pair a stage draws."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest

from core.typed_config import ConfigError
from data_prep.build import build
from data_prep.mixing import MixConfig, format_summary, line_repeats, plan, repeats, summary
from data_prep.recipe import load_recipe
from data_prep.tokenizer import train_tokenizer
from tests.data_prep.scripts_assets import misaligned, ordinary

SIZES = {"af-en": 275_000, "km-en": 111_000, "li-en": 25_000, "tk-en": 13_000}


def test_proportional_draws_every_line_once() -> None:
    assert plan(MixConfig(), SIZES) == SIZES
    assert set(line_repeats(MixConfig(), SIZES, 1, "stage1").values()) == {None}


def test_capped_draws_at_most_cap_lines() -> None:
    drawn = plan(MixConfig("capped", cap=50_000), SIZES)
    assert drawn == {"af-en": 50_000, "km-en": 50_000, "li-en": 25_000, "tk-en": 13_000}


@pytest.mark.parametrize("temperature", [1.0, 2.0, 5.0, 100.0])
def test_temperature_shares_follow_n_to_the_one_over_t(temperature: float) -> None:
    drawn = plan(MixConfig("temperature", temperature=temperature), SIZES)
    total = sum(SIZES.values())
    assert sum(drawn.values()) == total  # the same number of lines, mixed otherwise
    mass = sum(n ** (1 / temperature) for n in SIZES.values())
    for pair, n in SIZES.items():
        assert abs(drawn[pair] - total * n ** (1 / temperature) / mass) < 1
    if temperature == 1.0:
        assert drawn == SIZES


def test_higher_temperature_flattens_the_mix() -> None:
    shares = [
        summary(MixConfig("temperature", temperature=t), SIZES)["pairs"]["tk-en"]["share"]
        for t in (1.0, 2.0, 5.0, 100.0)
    ]
    assert shares == sorted(shares) and shares[0] < 0.04 and 0.24 < shares[-1] < 0.26


def test_repeats_draw_exactly_the_target() -> None:
    rng = random.Random(1)
    up = repeats(10, 25, rng)
    assert up is not None and sum(up) == 25 and set(up) <= {2, 3}
    down = repeats(10, 4, rng)
    assert down is not None and sum(down) == 4 and set(down) <= {0, 1}
    assert repeats(10, 10, rng) is None


def test_drawn_lines_depend_on_seed_and_stage_only() -> None:
    config = MixConfig("capped", cap=3)
    sizes = {"zh-en": 10}
    first = line_repeats(config, sizes, 1, "stage1-mt")
    assert first == line_repeats(config, sizes, 1, "stage1-mt")
    assert first != line_repeats(config, sizes, 2, "stage1-mt")


def test_summary_and_its_printed_line() -> None:
    entry = summary(MixConfig("temperature", temperature=5.0), {"zh-en": 90, "km-en": 10})
    assert entry["method"] == "temperature" and entry["temperature"] == 5.0
    assert entry["pairs"]["km-en"]["lines"] == 10
    assert sum(p["drawn"] for p in entry["pairs"].values()) == 100
    line = format_summary("stage1-mt", entry)
    assert line.startswith("stage1-mt: temperature T=5: zh-en ")
    assert "km-en 39.0% (39 of 10)" in line


def test_recipe_mixing_per_stage_and_its_errors() -> None:
    recipe = load_recipe(
        "freedict",
        ["mixing.method=temperature", "stage_mixing={stage2: {method: capped, cap: 5}}"],
    )
    assert recipe.mixing_for("stage1-mt+align").method == "temperature"
    assert recipe.mixing_for("stage2-mt") == MixConfig("capped", cap=5)
    assert recipe.mixing_for("dev") == MixConfig()  # held-out lines are never mixed
    assert load_recipe("freedict").mixing == MixConfig()  # the default: proportional
    with pytest.raises(ConfigError) as err:
        load_recipe("freedict", ["stage_mixing={stage3: {method: capped}}", "mixing.temperature=0"])
    text = str(err.value)
    assert "stage_mixing.stage3.cap: method 'capped' needs cap >= 1" in text
    assert "stage_mixing.stage3: no such stage (stages: stage1, stage2)" in text
    assert "mixing.temperature: must be > 0" in text


def _write_pair(folder: Path, lang: str, rows: list[tuple[str, str]]) -> None:
    folder.mkdir(parents=True)
    for index, code in enumerate((lang, "en")):
        text = "".join(row[index] + "\n" for row in rows)
        (folder / f"train.{code}").write_text(text, encoding="utf-8")


def test_build_mixes_pairs_and_flags_a_pair_that_lost_many_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An MT build of zh-en (12 ordinary + 9 misaligned lines) and th-en (4 lines), in
    process: the shards hold the planned lines per pair, and zh-en's losses are flagged."""
    zh_bad = [(row[1], row[2]) for row in misaligned() if row[0] == "zh"]
    zh_bad += [(row[1], row[2]) for row in misaligned() if row[0] == "ja"][:4]
    _write_pair(tmp_path / "zh-en", "zh", ordinary("zh") + zh_bad)
    _write_pair(tmp_path / "th-en", "th", ordinary("th")[:4])
    files = [tmp_path / p / f"train.{c}" for p, c in (("zh-en", "zh"), ("th-en", "th"))]
    tokenizer = train_tokenizer(files, tmp_path / "tok", vocab_size=500)
    corpora = {f"{lang}-en": {"format": "files", "path": f"{tmp_path}/{lang}-en/"}
               for lang in ("zh", "th")}  # fmt: skip
    recipe = load_recipe(
        "freedict",
        [
            "pairs=[zh-en, th-en]", "corpus=null", f"corpora={corpora}", f"tokenizer={tokenizer}",
            "curriculum=MT->MT", "workers=1", "mixing.method=temperature",
            "stage_mixing={stage2: {method: capped, cap: 6}}",
        ],
    )  # fmt: skip
    with caplog.at_level(logging.WARNING):
        manifest = build(recipe, tmp_path / "out", cache_dir=tmp_path / "cache", progress=False)
    clean = manifest["corpora"]["zh-en"]["clean"]
    assert clean["seen"] == 21 and clean["kept"] == 12  # the ordinary lines, all of them
    assert clean["warning"].startswith("zh-en: cleaning dropped 9 of 21 lines (43%")
    # Four Japanese lines in the Chinese file are wrong_script too (mostly kana, not Han).
    assert clean["warning"].endswith("wrong_script 5, length_ratio 2, identical 2")
    assert clean["warning"] in caplog.text
    assert "warning" not in manifest["corpora"]["th-en"]["clean"]
    sizes = {"zh-en": 12, "th-en": 4}
    expected = [plan(MixConfig("temperature"), sizes), {"zh-en": 6, "th-en": 4}]
    assert expected[0] == {"zh-en": 9, "th-en": 7}  # 12 ** 0.2 : 4 ** 0.2 of 16 lines
    for stage, drawn in zip(manifest["stages"], expected, strict=True):
        assert {p: v["drawn"] for p, v in stage["mixing"]["pairs"].items()} == drawn
        # MT in both directions: two samples per drawn line.
        for pair, n in drawn.items():
            src, tgt = pair.split("-")
            assert stage["by_direction"][f"mt:{src}-{tgt}"] == n
            assert stage["by_direction"][f"mt:{tgt}-{src}"] == n
