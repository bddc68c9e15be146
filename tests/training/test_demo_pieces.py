"""The demo's pieces at small size: a base stage on plain-text shards, then LoRA on MT
from that base (2 real DeepSpeed ranks), with the demo's own configs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import torch

from data_prep.build import build
from data_prep.recipe import load_recipe
from tests.conftest import REPO_ROOT, freedict_overrides
from tests.training.conftest import TINY, launch_command, losses, train_env

CONFIGS = REPO_ROOT / "training" / "configs"
SHARED = (
    "data", "micro_batch_size", "grad_accum", "epochs_per_stage",
    "max_steps_per_stage", "warmup_ratio", "seed", "deepspeed", "precision",
    "length_group_batches", "log_every", "save_every",
)  # fmt: skip


def _train(config: Path, *overrides: str) -> None:
    command = [str(config) if arg == TINY else arg for arg in launch_command(*overrides)]
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=train_env(), capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _shards(corpus: Path, tokenizer: Path, cache: Path, out: Path, curriculum: str) -> Path:
    overrides = freedict_overrides(
        corpus, tokenizer, f"curriculum={curriculum}", "max_pairs=1200", "dev_max_pairs=64"
    )
    build(load_recipe("freedict", overrides), out, cache, progress=False)
    return out


def _dev_loss(model: torch.nn.Module, shards: Path) -> float:
    """Mean answer-token loss on 64 held-out MT samples: the same batch for every model."""
    from data_prep.contract.manifest import read_manifest
    from training.data import StageData, collate
    from training.model import AnswerOnlyLM

    dev = StageData(shards / "dev", read_manifest(shards)["dev"])
    batch = collate([dev[i] for i in range(64)], pad_id=0)
    with torch.no_grad():
        loss, count = AnswerOnlyLM(model.eval())(**batch)
    return float(loss / count)


def test_full_and_lora_configs_share_everything_but_the_method(tmp_path: Path) -> None:
    from training.config import load_train_config

    (tmp_path / "manifest.json").write_text("{}")
    overrides = [f"data={tmp_path}"]
    full = load_train_config(CONFIGS / "tiny-cpu.yaml", overrides)
    lora = load_train_config(CONFIGS / "tiny-cpu-lora.yaml", overrides)
    assert (full.finetune, lora.finetune) == ("full", "lora")
    assert {k: getattr(full, k) for k in SHARED} == {k: getattr(lora, k) for k in SHARED}


def test_base_on_text_then_lora_learns_mt(
    freedict_corpus: Path, tokenizer_dir: Path, align_cache: Path, tmp_path: Path
) -> None:
    text = _shards(freedict_corpus, tokenizer_dir, align_cache, tmp_path / "text", "Text")
    mt = _shards(freedict_corpus, tokenizer_dir, align_cache, tmp_path / "mt", "MT")
    base_run, lora_run = tmp_path / "base", tmp_path / "lora"
    _train(
        CONFIGS / "tiny-cpu-base.yaml", f"data={text}", f"run_dir={base_run}",
        "epochs_per_stage=[3]", "max_steps_per_stage=150", "log_every=1",
    )  # fmt: skip
    base_losses = losses(base_run)
    assert (
        sum(base_losses[s] for s in range(141, 151))
        < sum(base_losses[s] for s in range(1, 11)) - 15
    )
    base = base_run / "export" / "model"
    _train(
        CONFIGS / "tiny-cpu-lora.yaml", f"model.name={base}", f"data={mt}",
        f"run_dir={lora_run}", "max_steps_per_stage=40",
    )  # fmt: skip
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    before = _dev_loss(AutoModelForCausalLM.from_pretrained(base), mt)
    adapted = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base), lora_run / "export" / "adapter"
    )
    after = _dev_loss(adapted, mt)
    # LoRA needs a base that knows something: after 40 steps of base, 30 LoRA steps moved
    # this loss by 0.02; after 150 steps of base, 40 LoRA steps moved it by 0.19.
    print(f"held-out MT loss: base {before:.3f}, base + LoRA {after:.3f}")
    assert after < before - 0.1, (before, after)
