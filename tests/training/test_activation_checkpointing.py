"""Activation checkpointing under 2-rank ZeRO-3 (fp32, CPU): the same first steps as
without it (loss and gradient norm), for full and LoRA fine-tuning, with a lower peak."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training.conftest import run_training

# Activations must dominate the peak for the saving to show: 8 blocks, wide rows.
SHAPE = ("model.tiny_hidden=256", "model.tiny_layers=8", "micro_batch_size=48", "grad_accum=1")


def run(built: Path, run_dir: Path, *extra: str) -> tuple[list[dict], dict]:
    result = run_training(
        f"data={built}", f"run_dir={run_dir}", "max_steps_per_stage=1", "log_every=1", *SHAPE,
        *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return rows, json.loads((run_dir / "summary.json").read_text())


@pytest.mark.parametrize("finetune", ["full", "lora"])
def test_same_steps_lower_peak(built: Path, tmp_path: Path, finetune: str) -> None:
    plain, plain_summary = run(built, tmp_path / "plain", f"finetune={finetune}")
    ckpt, ckpt_summary = run(
        built, tmp_path / "ckpt", f"finetune={finetune}", "activation_checkpointing=true"
    )
    assert [r["step"] for r in ckpt] == [r["step"] for r in plain] == [1, 2]
    for with_it, without in zip(ckpt, plain, strict=True):
        assert with_it["loss"] == pytest.approx(without["loss"], rel=1e-6, abs=0)
        assert without["grad_norm"] > 0
        assert with_it["grad_norm"] == pytest.approx(without["grad_norm"], rel=1e-5, abs=0)
    saved = plain_summary["peak_memory_mb"] - ckpt_summary["peak_memory_mb"]
    assert saved > 0.05 * plain_summary["peak_memory_mb"], (plain_summary, ckpt_summary)
