"""Real 2-rank DeepSpeed runs on CPU with a tiny BLOOM: ZeRO-3 full and LoRA fine-tuning,
exact resume after SIGKILL, and exports that load in a fresh process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO_ROOT
from tests.training.conftest import launch_command, losses, run_training, train_env
from tests.training.test_config import assert_fails_before_training, train_once


@pytest.fixture(scope="module")
def data(built: Path) -> str:
    return f"data={built}"


def test_zero3_full_finetune_learns_and_exports(data: str, tmp_path: Path) -> None:
    run = tmp_path / "full"
    result = run_training(
        data, f"run_dir={run}", "max_steps_per_stage=30", "log_every=1", "lr=3e-3"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = losses(run)
    assert sorted(seen) == list(range(1, 61))
    first, last = sum(seen[s] for s in range(1, 4)) / 3, sum(seen[s] for s in range(28, 31)) / 3
    assert last < first - 1.0, (first, last)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["trainable_parameters"] == summary["total_parameters"] > 0
    assert summary["padding_share"] < 0.10
    assert json.loads((run / "deepspeed.json").read_text())["train_batch_size"] == 8 * 2 * 2
    assert (run / "config.json").exists() and list((run / "tensorboard").iterdir())
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(run / "export" / "model")
    tokenizer = AutoTokenizer.from_pretrained(run / "export" / "model")
    base = AutoModelForCausalLM.from_pretrained(run / "tiny-model")
    trained, initial = model.state_dict(), base.state_dict()
    assert all(trained[k].abs().sum() > 0 for k in trained if "weight" in k)
    assert any(not torch.equal(trained[k], initial[k]) for k in trained)
    ids = tokenizer(
        "Translate from German to English.\nGerman: Guten Tag.\nEnglish:", return_tensors="pt"
    )
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]


def fixed_batch_loss(model: torch.nn.Module, built: Path) -> float:
    """Mean answer-token loss on the first 64 MT samples: the same batch for every model."""
    from training.data import collate, load_stages
    from training.model import AnswerOnlyLM

    stage = load_stages(built)[-1]
    batch = collate([stage[i] for i in range(64)], pad_id=0)
    with torch.no_grad():
        loss, count = AnswerOnlyLM(model.eval())(**batch)
    return float(loss / count)


def test_lora_adapter_and_merged_export_under_torchrun(
    data: str, built: Path, tmp_path: Path
) -> None:
    run = tmp_path / "lora"
    result = run_training(
        data, f"run_dir={run}", "finetune=lora", "export_merged=true", "max_steps_per_stage=25",
        "lr=2e-2", "lora.target_modules=[query_key_value, dense, dense_h_to_4h, dense_4h_to_h]",
        "log_every=1", launcher="torchrun",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(losses(run)) == list(range(1, 51))
    summary = json.loads((run / "summary.json").read_text())
    assert 0 < summary["trainable_parameters"] < summary["total_parameters"] / 10
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(run / "tiny-model")
    adapted = PeftModel.from_pretrained(base, run / "export" / "adapter")
    lora_b = [p for n, p in adapted.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # B starts at zero
    merged = AutoModelForCausalLM.from_pretrained(run / "export" / "merged")
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    adapted.eval()
    with torch.no_grad():
        assert torch.allclose(adapted(ids).logits, merged(ids).logits, atol=1e-4)
    # Learning, measured on one fixed batch rather than on noisy per-step losses.
    initial = AutoModelForCausalLM.from_pretrained(run / "tiny-model")
    assert fixed_batch_loss(merged, built) < fixed_batch_loss(initial, built) - 0.05


def test_resume_after_sigkill_is_exact(data: str, tmp_path: Path) -> None:
    common = (
        data,
        "max_steps_per_stage=8",
        "save_every=3",
        "log_every=1",
        "finetune=lora",
        "lora.dropout=0.1",
    )
    straight = tmp_path / "straight"
    assert run_training(*common, f"run_dir={straight}").returncode == 0
    killed = tmp_path / "killed"
    command = launch_command(*common, f"run_dir={killed}")
    proc = subprocess.Popen(command, cwd=REPO_ROOT, env=train_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 300
    # Stage 1 has steps 1-8; checkpoints at 3, 6, 8 (stage end) and 9: a kill after step
    # 10 resumes inside stage 2.
    while not ((killed / "metrics.jsonl").exists() and max(losses(killed), default=0) >= 11):
        assert proc.poll() is None and time.time() < deadline, "run ended before the kill"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert max(losses(killed)) < 16, "killed too late to test a resume"
    # A relaunch that changes the run (LR, schedule) is refused, before any rank starts,
    # with every difference listed; the saved config stays as it was.
    saved = (killed / "config.json").read_text()
    changed = train_once(*common, f"run_dir={killed}", "lr=3e-3", "max_steps_per_stage=30")
    assert_fails_before_training(
        changed, "lr: 0.001 in", "now 0.003", "max_steps_per_stage: 8 in", "now 30",
        "--allow-config-change",
    )  # fmt: skip
    assert (killed / "config.json").read_text() == saved
    # A bookkeeping setting (how many checkpoints to keep) may change: recorded, same losses.
    resumed = run_training(*common, f"run_dir={killed}", "keep_last=3")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = [json.loads(line) for line in (killed / "config_changes.jsonl").open()]
    assert len(record) == 1 and record[0]["changes"] == {"keep_last": {"was": 2, "now": 3}}
    assert 9 <= record[0]["step"] < 16  # the step the resume continued from
    assert json.loads((killed / "config.json").read_text())["keep_last"] == 3
    assert losses(killed) == losses(straight)
    assert sorted(losses(killed)) == list(range(1, 17))
    totals = [json.loads((run / "summary.json").read_text()) for run in (killed, straight)]
    for key in ("tokens", "answer_tokens", "padded_tokens", "steps"):
        assert totals[0][key] == totals[1][key], key


def test_zero2_bf16_runs_and_exports(data: str, tmp_path: Path) -> None:
    run = tmp_path / "zero2"
    result = run_training(
        data, f"run_dir={run}", "deepspeed=zero2", "precision=bf16", "max_steps_per_stage=4"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ds = json.loads((run / "deepspeed.json").read_text())
    assert ds["zero_optimization"]["stage"] == 2 and ds["bf16"] == {"enabled": True}
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(run / "export" / "model")
    assert model.config.n_layer == 2
