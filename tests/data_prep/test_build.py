"""End to end on the real FreeDict data: clean, align, build, read back with megatron-core."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.fileio import sha256_file
from core.typed_config import ConfigError
from data_prep import aligned, wordtok
from data_prep.aligned import prepare_pair, read_split
from data_prep.build import BuildError, build, link_plan, pair_plans
from data_prep.contract.manifest import read_manifest
from data_prep.contract.readers import CorpusError
from data_prep.contract.shards import open_shard
from data_prep.contract.templates import DEFAULT_TEMPLATES
from data_prep.contract.tokenizer import load_tokenizer
from data_prep.inspect_shards import InspectError, inspect
from data_prep.instructions import BuildSettings, InstructionBuilder
from data_prep.output import OutputError
from data_prep.recipe import Recipe, load_recipe, parse_curriculum
from tests.conftest import FULL_CURRICULUM, REPO_ROOT, freedict_overrides


def test_manifest_describes_every_stage(built: Path, tokenizer_dir: Path) -> None:
    manifest = read_manifest(built)
    assert [s["name"] for s in manifest["stages"]] == ["stage1-mt+align+hint+revise", "stage2-mt"]
    assert manifest["template_version"] == DEFAULT_TEMPLATES.version
    assert manifest["tokenizer"]["name_or_path"] == str(tokenizer_dir)
    assert manifest["token_dtype"] == "uint16"
    clean = manifest["corpora"]["de-en"]["clean"]
    assert clean["seen"] == 6231 and clean["kept"] + sum(clean["dropped"].values()) == 6231
    first, second = manifest["stages"]
    assert set(first["by_kind"]) == {"mt", "align", "hint", "revise"}
    assert first["by_kind"]["mt"] == second["by_kind"]["mt"] == 2 * clean["kept"]
    assert second["by_direction"] == {"mt:de-en": clean["kept"], "mt:en-de": clean["kept"]}
    for stage in manifest["stages"]:
        assert (
            stage["samples"] == sum(stage["by_kind"].values()) - stage["dropped"]["prompt_too_long"]
        )
        assert stage["tokens"] == sum(s["tokens"] for s in stage["shards"])
        for shard in stage["shards"]:
            for name, digest in shard["files"].items():
                assert sha256_file(built / stage["name"] / name) == digest
    for name, digest in manifest["corpora"]["de-en"]["files"].items():
        assert sha256_file(built / name) == digest


def _expected_samples(
    recipe: Recipe, corpus: aligned.AlignedCorpus, stage: dict, kinds: list[str]
) -> list:
    """A stage's samples rebuilt line by line in this process, one builder for the pair."""
    settings = BuildSettings(
        templates=DEFAULT_TEMPLATES,
        names={"de": "German", "en": "English"},
        ratios=recipe.ratios,
        align=recipe.align_instruct,
        hint=recipe.hint_instruct,
        revise=recipe.revise_instruct,
        both_directions=True,
        seed=recipe.seed,
        stage=stage["name"],
    )
    builder = InstructionBuilder(settings, kinds)
    return [s for a in read_split(corpus, "train", stats="train") for s in builder.samples(a)]


def _assert_shards_hold(folder: Path, stage: dict, expected: list, tokenizer: Any) -> None:
    tokens, mask = open_shard(folder / stage["name"] / stage["shards"][0]["prefix"])
    assert len(tokens) == len(expected) == stage["samples"]
    for k, sample in enumerate(expected):
        ids, loss = np.array(tokens[k]), np.array(mask[k])
        start = int(np.argmax(loss))
        assert loss[:start].sum() == 0 and loss[start:].all()
        assert ids[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(ids[:start].tolist()) == sample.prompt
        assert tokenizer.decode(ids[start:-1].tolist()) == sample.answer


def test_every_shard_decodes_to_the_instruction_text(
    built: Path, freedict_corpus: Path, tokenizer_dir: Path, align_cache: Path, tmp_path: Path
) -> None:
    """Regenerate the samples from the pair's aligned corpus (the same aligner run: a
    cache hit) and compare every one; stage 2 was built in chunks by 2 workers."""
    recipe = load_recipe(
        "freedict",
        freedict_overrides(freedict_corpus, tokenizer_dir, f"curriculum={FULL_CURRICULUM}"),
    )
    tokenizer = load_tokenizer(str(tokenizer_dir))
    manifest = read_manifest(built)
    (plan,) = pair_plans(recipe, tmp_path, align_cache / "align")
    corpus = prepare_pair(plan)
    assert corpus.alignment_key == manifest["corpora"]["de-en"]["alignment_cache_key"]
    # Positives of Align, Hint and Revise come from the intersection, filtered by its
    # corpus statistics; Align's negatives are checked against the union.
    assert plan.link_sets == ("intersection", "union") and plan.stats_sets == ("intersection",)
    assert manifest["links"] == {
        "align": "intersection", "hint": "intersection", "revise": "intersection",
        "align_negatives": "union",
    }  # fmt: skip
    for kinds, stage in zip(parse_curriculum(FULL_CURRICULUM), manifest["stages"], strict=True):
        _assert_shards_hold(
            built, stage, _expected_samples(recipe, corpus, stage, kinds), tokenizer
        )


class CountingPattern:
    """wordtok's token pattern, counting the lines it tokenises."""

    def __init__(self, pattern: Any) -> None:
        self.pattern, self.calls = pattern, Counter()

    def finditer(self, text: str) -> Any:
        self.calls["words"] += 1
        return self.pattern.finditer(text)

    def findall(self, text: str) -> Any:
        self.calls["tokens"] += 1
        return self.pattern.findall(text)


def test_build_aligns_and_tokenises_each_line_once(
    freedict_corpus: Path, tokenizer_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One aligner run per pair (train and dev lines together: one cache entry), one
    word tokenisation per line (plus cleaning's token count), and samples that do not
    depend on how the corpus is cut into chunks."""
    counting = CountingPattern(wordtok._TOKEN)
    monkeypatch.setattr(wordtok, "_TOKEN", counting)
    monkeypatch.setattr(aligned, "CHUNK_LINES", 64)
    overrides = freedict_overrides(
        freedict_corpus, tokenizer_dir, "curriculum=MT+Align->MT", "max_pairs=300",
        "dev_max_pairs=60", "workers=1",
    )  # fmt: skip
    recipe = load_recipe("freedict", overrides)
    cache = tmp_path / "cache"
    manifest = build(recipe, tmp_path / "out", cache, progress=False)
    assert len(list((cache / "align").iterdir())) == 1
    train, dev = manifest["corpora"]["de-en"]["clean"], manifest["dev"]
    assert dev["clean"]["de-en"]["kept"] == dev["by_direction"]["mt:de-en"] == 60
    assert counting.calls["words"] == 2 * (train["kept"] + 60)
    # and cleaning's token count for its length-ratio test, once per line read
    assert counting.calls["tokens"] <= 2 * (train["seen"] + dev["clean"]["de-en"]["seen"])
    (plan,) = pair_plans(recipe, tmp_path / "again", cache / "align")
    corpus = prepare_pair(plan)
    assert len(corpus.chunks_of("train")) == 5 and corpus.lines("dev") == 60
    tokenizer = load_tokenizer(str(tokenizer_dir))
    for kinds, stage in zip(recipe.stages(), manifest["stages"], strict=True):
        expected = _expected_samples(recipe, corpus, stage, kinds)
        _assert_shards_hold(tmp_path / "out", stage, expected, tokenizer)


def test_link_plan_reads_align_links() -> None:
    base = ["corpus.path=x/", "tokenizer=t"]
    assert link_plan(load_recipe("freedict", [*base, "curriculum=MT"])) == ((), ())
    recipe = load_recipe("freedict", [*base, "curriculum=MT+Align->MT"])
    assert link_plan(recipe) == (("intersection", "union"), ("intersection",))
    recipe = load_recipe(
        "freedict",
        [*base, "curriculum=MT+Hint", "align.links.hint=grow-diag-final-and",
         "hint_instruct.min_consistency=0"],
    )  # fmt: skip
    assert link_plan(recipe) == (("grow-diag-final-and",), ())
    with pytest.raises(ConfigError, match=r"align\.links\.mt: not an instruction type"):
        load_recipe("freedict", [*base, "align.links.mt=union"])


def test_rebuild_is_byte_equal_and_seed_changes_it(
    built: Path, freedict_corpus: Path, tokenizer_dir: Path, align_cache: Path, tmp_path: Path
) -> None:
    overrides = freedict_overrides(freedict_corpus, tokenizer_dir, f"curriculum={FULL_CURRICULUM}")
    again = build(
        load_recipe("freedict", overrides), tmp_path / "again", align_cache, progress=False
    )
    first = read_manifest(built)
    assert [s["shards"] for s in again["stages"]] == [s["shards"] for s in first["stages"]]
    reseeded = build(
        load_recipe("freedict", [*overrides, "seed=2"]),
        tmp_path / "s2",
        align_cache,
        progress=False,
    )
    assert reseeded["stages"][0]["shards"] != first["stages"][0]["shards"]


def test_inspect_marks_the_loss_span(built: Path) -> None:
    text = inspect(built, samples=2)
    assert "stage1-mt+align+hint+revise" in text and "stage2-mt" in text
    assert "Translate from German to English.\nGerman: " in text
    assert "English:⟦ " in text and "</s>⟧" in text


def test_existing_output_needs_overwrite(
    built: Path, freedict_corpus: Path, tokenizer_dir: Path
) -> None:
    recipe = load_recipe("freedict", freedict_overrides(freedict_corpus, tokenizer_dir))
    with pytest.raises(OutputError, match="already exists"):
        build(recipe, built, progress=False)


def test_failed_build_leaves_nothing(
    freedict_corpus: Path, tokenizer_dir: Path, tmp_path: Path
) -> None:
    """The second pair's files differ in length: the first pair was already written when
    the error comes, yet no output folder (and no partial folder) remains."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.nl").write_text("Een.\nTwee.\nDrie.\n", encoding="utf-8")
    (bad / "train.en").write_text("One.\nTwo.\n", encoding="utf-8")
    overrides = freedict_overrides(
        freedict_corpus, tokenizer_dir, "pairs=[de-en, nl-en]", "curriculum=MT",
        f"corpora={{nl-en: {{format: files, path: {bad}/}}}}",
    )  # fmt: skip
    with pytest.raises(CorpusError, match=r"train\.nl has 3 lines, .*train\.en has 2"):
        build(load_recipe("freedict", overrides), tmp_path / "out", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad"]


def test_missing_inputs_listed_before_any_work(
    freedict_corpus: Path, tokenizer_dir: Path, tmp_path: Path
) -> None:
    overrides = freedict_overrides(
        freedict_corpus, tokenizer_dir, "pairs=[de-en, nl-en, ru-en]",
        f"corpora.nl-en={{format: files, path: {tmp_path}/x/}}",
        f"corpora.ru-en={{format: tsv, path: {tmp_path}/ru.tsv, columns: [ru, en]}}",
    )  # fmt: skip
    with pytest.raises(BuildError, match="3 input file") as err:
        build(load_recipe("freedict", overrides), tmp_path / "out", progress=False)
    for name in ("x/train.nl", "x/train.en", "ru.tsv"):
        assert f"{tmp_path}/{name}" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_killed_build_leaves_no_readable_output(
    freedict_corpus: Path, tokenizer_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    overrides = freedict_overrides(freedict_corpus, tokenizer_dir, "curriculum=MT", "workers=1")
    command = [sys.executable, "-m", "data_prep", "build", "freedict", "--out", str(out)]
    env = dict(os.environ, ALIGNINSTRUCT_CACHE=str(tmp_path / "cache"))
    proc = subprocess.Popen(
        [*command, *overrides], cwd=REPO_ROOT, env=env, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while not list(tmp_path.glob(".out.partial-*/stage1-mt/shard-00000.bin")):
        assert proc.poll() is None and time.time() < deadline, "build ended before it was killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    with pytest.raises(ConfigError, match="no manifest"):
        read_manifest(out)
    partial = next(tmp_path.glob(".out.partial-*"))
    with pytest.raises(ConfigError):
        read_manifest(partial)
    # The killed run's process is gone: the next build removes its partial folder.
    build(load_recipe("freedict", overrides), out, cache_dir=tmp_path / "cache", progress=False)
    assert not list(tmp_path.glob(".out.partial-*"))
    assert read_manifest(out)["stages"][0]["samples"] > 0


def test_cli_build_and_inspect(freedict_corpus: Path, tokenizer_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    env = dict(os.environ, ALIGNINSTRUCT_CACHE=str(tmp_path / "cache"))
    args = freedict_overrides(freedict_corpus, tokenizer_dir, "curriculum=MT", "max_pairs=200")
    run = subprocess.run(
        [sys.executable, "-m", "data_prep", "build", "freedict", *args, "--out", str(out)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "stage1-mt: 400 samples" in run.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["corpora"]["de-en"]["files"]
    shown = subprocess.run(
        [sys.executable, "-m", "data_prep", "inspect", str(out), "--samples", "1"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "⟦" in shown.stdout and "400 samples" in shown.stdout


def test_inspect_fails_on_a_cut_shard(built: Path, tmp_path: Path) -> None:
    copy = tmp_path / "shards"
    shutil.copytree(built, copy)
    stage = read_manifest(copy)["stages"][1]
    shard = copy / stage["name"] / f"{stage['shards'][0]['prefix']}.bin"
    shard.write_bytes(shard.read_bytes()[:-2])
    with pytest.raises(InspectError, match="1 shard file") as err:
        inspect(copy, samples=1)
    assert f"{shard}: sha256 differs" in str(err.value)
    shown = subprocess.run(
        [sys.executable, "-m", "data_prep", "inspect", str(copy)],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert shown.returncode == 2 and "Traceback" not in shown.stderr
    assert str(shard) in shown.stderr


def test_full_disk_during_build(
    freedict_corpus: Path, tokenizer_dir: Path, tmp_path: Path, small_disk: Path
) -> None:
    out = small_disk / "shards"
    command = [
        sys.executable, "-m", "data_prep", "build", "freedict", "--out", str(out),
        *freedict_overrides(freedict_corpus, tokenizer_dir, "curriculum=MT", "workers=1"),
    ]  # fmt: skip
    env = dict(os.environ, ALIGNINSTRUCT_CACHE=str(tmp_path / "cache"))
    run = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {out}: no space left on device")
    assert "choose another --out" in errors[0]
    # Nothing of the build is left; the owner lock file stays by design (core/lock.py).
    assert [p.name for p in small_disk.iterdir()] == [".shards.lock"]
