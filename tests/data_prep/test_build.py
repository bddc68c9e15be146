"""End to end on the real FreeDict data: clean, align, build, read back with megatron-core."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.fileio import sha256_file
from core.typed_config import ConfigError
from data_prep.align import AlignConfig, align
from data_prep.build import BuildError, PairData, aligned_pairs, build
from data_prep.cleaning import CleanReport
from data_prep.contract.manifest import read_manifest
from data_prep.contract.readers import CorpusError
from data_prep.contract.shards import open_shard
from data_prep.contract.templates import DEFAULT_TEMPLATES
from data_prep.contract.tokenizer import load_tokenizer
from data_prep.inspect_shards import InspectError, inspect
from data_prep.instructions import BuildSettings, InstructionBuilder
from data_prep.output import OutputError
from data_prep.recipe import load_recipe, parse_curriculum
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


def test_every_shard_decodes_to_the_instruction_text(
    built: Path, tokenizer_dir: Path, align_cache: Path
) -> None:
    """Regenerate the samples from the build's corpus and alignment; compare every one."""
    recipe = load_recipe(
        "freedict",
        [f"tokenizer={tokenizer_dir}", f"curriculum={FULL_CURRICULUM}", f"corpus.path={built}/"],
    )
    tokenizer = load_tokenizer(str(tokenizer_dir))
    manifest = read_manifest(built)
    pair = PairData("de", "en", built / "corpus/de-en.de", built / "corpus/de-en.en", CleanReport())
    lines = [p.read_text(encoding="utf-8").splitlines() for p in (pair.src_file, pair.tgt_file)]
    pair.alignment = align(*lines, AlignConfig(), align_cache / "align")
    assert pair.alignment.key == manifest["corpora"]["de-en"]["alignment_cache_key"]
    # Positives of Align, Hint and Revise come from the intersection, filtered by its
    # corpus statistics; Align's negatives are checked against the union.
    link_sets = [({"intersection", "union"}, {"intersection"}), (set(), set())]
    stages = zip(parse_curriculum(FULL_CURRICULUM), manifest["stages"], link_sets, strict=True)
    for kinds, stage, (needed, stats_sets) in stages:
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
        pair.ensure_stats(stats_sets)
        expected = [s for a in aligned_pairs(pair, needed, pair.stats) for s in builder.samples(a)]
        tokens, mask = open_shard(built / stage["name"] / stage["shards"][0]["prefix"])
        assert len(tokens) == len(expected) == stage["samples"]
        for k, sample in enumerate(expected):
            ids, loss = np.array(tokens[k]), np.array(mask[k])
            start = int(np.argmax(loss))
            assert loss[:start].sum() == 0 and loss[start:].all()
            assert ids[-1] == tokenizer.eos_token_id
            assert tokenizer.decode(ids[:start].tolist()) == sample.prompt
            assert tokenizer.decode(ids[start:-1].tolist()) == sample.answer


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
    assert list(small_disk.iterdir()) == []
