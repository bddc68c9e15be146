"""Dev loss on the build's dev shards: rank-shared, logged every `eval_every` steps and at
stage ends, equal to the loss of the final weights over the whole dev set; and the LR
logged is the one each step used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.training.conftest import add_dev_split, copy_build, run_training
from tests.training.test_config import assert_fails_before_training, train_once
from training.schedule import lr_multiplier


def test_eval_every_needs_a_dev_split(built: Path, tmp_path: Path) -> None:
    build = copy_build(built, tmp_path / "no-dev")
    manifest = json.loads((build / "manifest.json").read_text())
    del manifest["dev"]  # a corpus without a dev split builds no dev entry
    (build / "manifest.json").write_text(json.dumps(manifest))
    result = train_once(f"data={build}", f"run_dir={tmp_path}/run", "eval_every=5")
    assert_fails_before_training(result, "eval_every", "has no dev split")


def full_dev_loss(model_dir: Path, build: Path, manifest: dict) -> tuple[float, int]:
    """One process, no DeepSpeed: the token-mean loss over every dev sample."""
    from transformers import AutoModelForCausalLM

    from training.data import StageData, collate
    from training.model import AnswerOnlyLM

    dev = StageData(build / "dev", manifest["dev"])
    model = AnswerOnlyLM(AutoModelForCausalLM.from_pretrained(model_dir).eval())
    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(dev), 16):
            batch = collate([dev[i] for i in range(start, min(start + 16, len(dev)))], 0)
            loss, count = model(**batch)
            total, tokens = total + float(loss), tokens + int(count)
    return total / tokens, tokens


def test_dev_loss_rows_and_step_lr(built: Path, tmp_path: Path) -> None:
    build = copy_build(built, tmp_path / "shards")
    manifest = add_dev_split(build)
    run = tmp_path / "run"
    result = run_training(
        f"data={build}", f"run_dir={run}", "max_steps_per_stage=4", "eval_every=3",
        "log_every=2", "lr=3e-3", "warmup_ratio=0.25",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    dev = [r for r in rows if "dev_loss" in r]
    assert [r["step"] for r in dev] == [3, 4, 6, 8]  # every 3 steps and at both stage ends
    assert all(r["dev_tokens"] == manifest["dev"]["answer_tokens"] for r in dev)
    expected, tokens = full_dev_loss(run / "export" / "model", build, manifest)
    assert tokens == manifest["dev"]["answer_tokens"]
    assert dev[-1]["dev_loss"] == pytest.approx(expected, rel=1e-4)
    assert dev[0]["dev_loss"] > dev[-1]["dev_loss"]
    # lr: the rate the logged step used (warmup 1 step of 4, then linear decay, per stage)
    multiplier = lr_multiplier([(4, 1), (4, 1)], 0.25)
    train = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train] == [2, 4, 6, 8]
    for row in train:
        assert row["lr"] == pytest.approx(3e-3 * multiplier(row["step"] - 1)), row
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("dev/loss")] == [3, 4, 6, 8]
