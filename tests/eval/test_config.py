"""The typed eval config and the up-front input checks: every problem at once, exit 2,
no traceback, nothing written and nothing decoded."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.typed_config import ConfigError, parse_args_with_overrides
from eval.cli import parser
from eval.comet_score import checkpoint_problems
from eval.config import flag_overrides, load_eval_config
from eval.decode import DecodeConfig
from tests.conftest import REPO_ROOT

MINI = REPO_ROOT / "tests" / "assets" / "opus-100-mini"


def eval_cli(*args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eval", *map(str, args)], cwd=REPO_ROOT, capture_output=True,
        text=True, timeout=600, check=False,
        env=dict(os.environ, OMP_NUM_THREADS="1", **env),
    )  # fmt: skip


def test_yaml_config_with_eval_and_grid_overrides(tmp_path: Path) -> None:
    path = tmp_path / "eval.yaml"
    config_yaml = {"grid": "freedict", "model": "m", "out": "o", "decode": {"num_beams": 2}}
    path.write_text(yaml.safe_dump(config_yaml))
    config, grid = load_eval_config(
        path, ["decode.batch_size=8", "corpus.path=/c/", "max_sentences=5", "grid.split=dev"]
    )
    assert config.decode == DecodeConfig(batch_size=8, num_beams=2)
    assert (config.model, config.out) == ("m", "o")
    assert (grid.corpus.path, grid.max_sentences, grid.split) == ("/c/", 5, "dev")


def test_readme_flags_are_aliases_of_config_keys() -> None:
    argv = ["run", "--grid", "freedict", "corpus.path=c/", "--model", "yes", "--out", "1e3",
            "--max-new-tokens", "64", "--beams", "3", "max_sentences=7"]  # fmt: skip
    args = parse_args_with_overrides(parser(), argv)
    config, grid = load_eval_config(args.config, [*flag_overrides(args), *args.overrides])
    assert (config.model, config.out) == ("yes", "1e3")  # paths stay strings
    assert (config.decode.max_new_tokens, config.decode.num_beams) == (64, 3)
    assert (grid.name, grid.corpus.path, grid.max_sentences) == ("freedict", "c/", 7)


def test_align_takes_the_typed_config_with_flags_as_aliases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`eval align` reads the eval config (align.* keys) and key=value overrides like
    `eval run`; its flags are aliases; a missing or bad key exits 2 before any model loads."""
    from core.typed_config import load_config
    from eval.cli import main
    from eval.config import AlignEvalConfig, EvalConfig

    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump({"model": "m", "out": "o", "align": {"batch_size": 4}}))
    argv = ["align", "--config", str(path), "--data", "b", "--max-samples", "9",
            "align.batch_size=8", "--adapter", "a"]  # fmt: skip
    args = parse_args_with_overrides(parser(), argv)
    config = load_config(EvalConfig, args.config, [*flag_overrides(args), *args.overrides])
    assert config.align == AlignEvalConfig(data="b", batch_size=8, max_samples=9)
    assert (config.model, config.adapter, config.out) == ("m", "a", "o")
    args = parse_args_with_overrides(
        parser(), ["align", "--config", str(path), "--batch-size", "2"]
    )
    assert load_config(EvalConfig, args.config, flag_overrides(args)).align.batch_size == 2
    assert main(["align", "--out", str(tmp_path / "x"), "align.batch_size=0"]) == 2
    err = capsys.readouterr().err
    assert "align.batch_size: must be >= 1" in err and "Traceback" not in err
    assert main(["align", "--config", str(path)]) == 2
    assert "align.data: required (--data BUILD or align.data=BUILD)" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_every_config_problem_listed_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        load_eval_config(None, ["decode.num_beams=0", "nope=1", "decode.batch_size=x"])
    text = str(err.value)
    for expected in ("decode.num_beams: must be >= 1", "nope: unknown key",
                     "decode.batch_size: expected int", "out: required"):  # fmt: skip
        assert expected in text
    with pytest.raises(ConfigError) as err:
        load_eval_config(None, ["out=o", "decode.length_ratio=0", "decode.length_slack=-1",
                                "comet_batch_size=0"])  # fmt: skip
    for expected in ("decode.length_ratio: must be > 0", "decode.length_slack: must be >= 0",
                     "comet_batch_size: must be >= 1"):  # fmt: skip
        assert expected in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_eval_config(None, ["out=o", "pairs=[xx-en]", "grid.zeroshot=3"])
    assert "unknown language code 'xx'" in str(err.value)
    assert "zeroshot: expected a list" in str(err.value)


@pytest.mark.integration
def test_bad_inputs_fail_before_decoding(tmp_path: Path) -> None:
    """Every bad input named at once, from the README command shape, exit 2."""
    out_file = tmp_path / "taken"
    out_file.write_text("not a folder\n")
    result = eval_cli(
        "run", "--grid", "opus100", f"corpus.path={MINI}", "--model", tmp_path / "no-model",
        "--adapter", tmp_path / "no-adapter", "--comet", "/nonexistent.ckpt", "--out", out_file,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    for expected in (f"model: '{tmp_path / 'no-model'}': no such folder",
                     f"adapter: '{tmp_path / 'no-adapter'}': no such folder",
                     "comet: /nonexistent.ckpt: no such file",
                     f"out: {out_file} is a file", "74 test file(s) missing"):  # fmt: skip
        assert expected in result.stderr
    result = eval_cli("run", "--grid", "opus100", f"corpus.path={MINI}", "pairs=[en-af]",
                      "supervised=[]", "zeroshot=[]", "--model", tmp_path,
                      "--out", out_file / "eval")  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"out: {out_file} is a file, so the folder {out_file / 'eval'} cannot be" in (
        result.stderr
    )


@pytest.mark.integration
def test_uncached_hub_model_fails_at_once_offline(tmp_path: Path) -> None:
    result = eval_cli("run", "--grid", "opus100", f"corpus.path={MINI}", "pairs=[en-af]",
                      "supervised=[]", "zeroshot=[]", "--model", "bigscience/not-a-cached-model",
                      "--out", tmp_path / "o", HF_HUB_OFFLINE="1")  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "'bigscience/not-a-cached-model' is a hub name that is not in the local cache" in (
        result.stderr
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.integration
def test_read_only_output_fails_before_decoding(read_only_dir: Path, tmp_path: Path) -> None:
    locked = read_only_dir
    result = eval_cli("run", "--grid", "opus100", f"corpus.path={MINI}", "pairs=[en-af]",
                      "supervised=[]", "zeroshot=[]", "--model", tmp_path,
                      "--out", locked / "eval")  # fmt: skip
    assert result.returncode == 2 and f"out: cannot write in {locked}" in result.stderr


def test_comet_checkpoint_checked_without_loading(tiny_ckpt: Path, tmp_path: Path) -> None:
    assert checkpoint_problems(tiny_ckpt) == []
    copy = tmp_path / "copy"
    shutil.copytree(tiny_ckpt.parents[1], copy)
    ckpt = copy / "checkpoints" / "model.ckpt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) - 100])  # cut short, as by a full disk
    (copy / "hparams.yaml").unlink()
    problems = "\n".join(checkpoint_problems(ckpt))
    assert f"{copy / 'hparams.yaml'}: missing" in problems
    assert f"{ckpt}: not a complete PyTorch checkpoint" in problems
    assert "is a folder" in checkpoint_problems(copy)[0]


@pytest.mark.integration
def test_config_errors_printed_once_on_two_ranks(tmp_path: Path) -> None:
    from tests.training.conftest import TORCHRUN, free_port

    result = subprocess.run(
        [TORCHRUN, "--nproc_per_node", "2", "--master_port", str(free_port()), "-m", "eval",
         "run", "--grid", "opus100", f"corpus.path={MINI}", "--model", str(tmp_path / "nope"),
         "--out", str(tmp_path / "o")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.count("no such folder") == 1, result.stderr[-3000:]
    # The missing-file list names each file once (en-af and af-en share their files).
    assert result.stderr.count("opus.am-en-test.am\n") == 1


def test_unloadable_comet_fails_before_decoding(
    trained_model: Path, freedict_corpus: Path, tiny_ckpt: Path, tmp_path: Path
) -> None:
    """A checkpoint that passes the file checks but does not load stops the run before
    the first sentence is decoded (COMET is loaded up front, then reused for scoring)."""
    copy = tmp_path / "comet"
    shutil.copytree(tiny_ckpt.parents[1], copy)
    hparams = yaml.safe_load((copy / "hparams.yaml").read_text())
    hparams["class_identifier"] = "no-such-comet-model"
    (copy / "hparams.yaml").write_text(yaml.safe_dump(hparams))
    result = eval_cli(
        "run", "--grid", "freedict", f"corpus.path={freedict_corpus}/", "max_sentences=5",
        "--model", trained_model, "--comet", copy / "checkpoints" / "model.ckpt",
        "--out", tmp_path / "o",
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "cannot load the COMET model" in result.stderr
    assert not (tmp_path / "o" / "hyps").exists()
