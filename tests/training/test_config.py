"""Bad training configs fail before any rank starts, with every problem named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.typed_config import ConfigError
from data_prep.tokenizer import train_tokenizer
from tests.conftest import REPO_ROOT
from tests.training.conftest import TINY, TRAIN, run_training
from training.config import TrainConfig, deepspeed_config, load_train_config
from training.model import build_tiny_bloom


def train_once(*overrides: str) -> subprocess.CompletedProcess[str]:
    """train.py as one plain process: validation needs no launcher."""
    return subprocess.run(
        [sys.executable, TRAIN, "--config", TINY, *overrides], cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def assert_fails_before_training(result: subprocess.CompletedProcess[str], *mentions: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "init_distributed" not in result.stderr and "step" not in result.stdout
    for mention in mentions:
        assert mention in result.stderr, (mention, result.stderr[-2000:])


@pytest.mark.integration
def test_all_problems_listed_at_once(tmp_path: Path) -> None:
    result = train_once(
        f"data={tmp_path}/none", f"run_dir={tmp_path}/run", "micro_batch_size=0",
        "finetune=adapter", "bogus=1", "lora.rank=0", "dev_micro_batch_size=0",
    )  # fmt: skip
    assert_fails_before_training(
        result, "bogus: unknown key", "finetune: 'adapter' is not one of", "lora.rank",
        "dev_micro_batch_size: must be >= 1 (or null)",
    )  # fmt: skip
    assert "problem(s)" in result.stderr


@pytest.mark.integration
def test_missing_shard_dir(tmp_path: Path) -> None:
    result = train_once(f"data={tmp_path}/missing", f"run_dir={tmp_path}/run")
    assert_fails_before_training(result, "data:", "has no manifest.json")


def test_shards_of_another_tokenizer(built: Path, freedict_corpus: Path, tmp_path: Path) -> None:
    other_tok = train_tokenizer([freedict_corpus / "dev.en"], tmp_path / "tok", vocab_size=600)
    from transformers import AutoTokenizer

    model = build_tiny_bloom(AutoTokenizer.from_pretrained(other_tok), tmp_path / "m", 32, 1, 2, 1)
    result = train_once(
        f"data={built}", f"run_dir={tmp_path}/run", f"model.name={model}", "model.tiny=false"
    )
    assert_fails_before_training(result, "were built with tokenizer", str(model))


def test_deepspeed_json_that_disagrees_with_the_batch_arithmetic(
    built: Path, tmp_path: Path
) -> None:
    ds = json.loads((REPO_ROOT / "ds_configs" / "zero3.json").read_text())
    ds["train_batch_size"] = 48  # micro 8 * accum 2 * world 2 = 32
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(ds))
    config = load_train_config(TINY, [f"data={built}", f"run_dir={tmp_path}", f"deepspeed={path}"])
    with pytest.raises(ConfigError, match=r"train_batch_size=48 disagrees with the config \(32\)"):
        deepspeed_config(config, world_size=2)
    filled = deepspeed_config(load_train_config(TINY, [f"data={built}", f"run_dir={tmp_path}"]), 2)
    assert filled["train_batch_size"] == 32 and filled["gradient_accumulation_steps"] == 2
    # Under the real launcher with 2 ranks: one clear message, exit 2, no training.
    result = run_training(f"data={built}", f"run_dir={tmp_path}/run", f"deepspeed={path}")
    assert result.returncode != 0
    assert result.stderr.count("train_batch_size=48 disagrees") == 1, result.stderr[-2000:]
    assert not (tmp_path / "run").exists()


def test_stage_smaller_than_a_global_batch(built: Path, tmp_path: Path) -> None:
    result = train_once(f"data={built}", f"run_dir={tmp_path}/run", "micro_batch_size=100000")
    assert_fails_before_training(result, "fewer than one global batch")


@pytest.mark.parametrize(
    "path", sorted((REPO_ROOT / "training" / "configs").glob("*.yaml")), ids=lambda p: p.stem
)
def test_shipped_configs_are_valid(path: Path, built: Path, tmp_path: Path) -> None:
    config = load_train_config(path, [f"data={built}", f"run_dir={tmp_path}"])
    ds = deepspeed_config(config, world_size=8)
    assert ds["train_batch_size"] == config.micro_batch_size * config.grad_accum_for(8) * 8
    assert ds["gradient_accumulation_steps"] == config.grad_accum_for(8)
    assert ds["bf16"]["enabled"] == (config.precision == "bf16")
    if path.stem.startswith("bloomz"):  # a recipe: the same global batch on any cluster
        assert config.global_batch_size == ds["train_batch_size"] == 256
        assert config.grad_accum is None
        for world in (1, 2, 8, 16):
            if 256 % (config.micro_batch_size * world):  # refused before launch instead
                assert config.batch_problems(world)
                continue
            assert deepspeed_config(config, world)["train_batch_size"] == 256


def batch_config(**values: object) -> TrainConfig:
    return TrainConfig(data="-", run_dir="-", **values)  # type: ignore[arg-type]


def test_grad_accum_follows_from_the_global_batch() -> None:
    config = batch_config(micro_batch_size=8, global_batch_size=256)
    assert [config.grad_accum_for(w) for w in (1, 2, 8, 16, 32)] == [32, 16, 4, 2, 1]
    assert {config.train_batch_size(w) for w in (1, 2, 8, 16, 32)} == {256}
    # Without a global batch: the given grad_accum (default 1), the batch grows with ranks.
    assert batch_config(micro_batch_size=8, grad_accum=2).train_batch_size(4) == 64
    assert batch_config(micro_batch_size=8).train_batch_size(3) == 24
    # Both given and agreeing is fine.
    assert (
        batch_config(micro_batch_size=8, grad_accum=4, global_batch_size=64).grad_accum_for(2) == 4
    )


def test_a_global_batch_that_does_not_divide_is_an_error() -> None:
    config = batch_config(micro_batch_size=8, global_batch_size=256)
    assert config.batch_problems(8) == []
    (problem,) = config.batch_problems(3)
    assert (
        "global_batch_size: 256 is not a multiple of micro_batch_size (8) x world size" in problem
    )
    with pytest.raises(ConfigError, match="not a multiple"):
        config.train_batch_size(3)
    (problem,) = batch_config(
        micro_batch_size=8, grad_accum=2, global_batch_size=256
    ).batch_problems(8)
    assert problem.startswith("grad_accum: 2 disagrees with global_batch_size 256")


@pytest.mark.integration
def test_batch_problems_are_listed_with_the_others_before_launch(
    built: Path, tmp_path: Path
) -> None:
    result = train_once(
        f"data={built}", f"run_dir={tmp_path}/run", "global_batch_size=12", "grad_accum=null",
        "eval_every=5", f"model.name={tmp_path}/nowhere", "model.tiny=false",
    )  # fmt: skip
    assert_fails_before_training(
        result, "global_batch_size: 12 is not a multiple of micro_batch_size (8)", "model.name"
    )


@pytest.mark.integration
def test_token_budget_below_the_longest_row(built: Path, tmp_path: Path) -> None:
    result = train_once(f"data={built}", f"run_dir={tmp_path}/run", "max_tokens_per_micro_batch=8")
    assert_fails_before_training(
        result, "max_tokens_per_micro_batch", "is less than the longest row"
    )
