"""Exports at the end of training: `export/model` (full fine-tuning) or `export/adapter`
(+ `export/merged`) for LoRA, gathered from the ZeRO-3 partitions, written atomically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch.distributed as dist
from torch import nn

from core.fileio import atomic_dir
from core.models import merge_adapter as core_merge_adapter
from data_prep.contract.chat import PROMPT_FORMAT_NAME
from data_prep.contract.tokenizer import load_tokenizer
from training.config import TrainConfig
from training.engine import model_dtype
from training.model import hf_model, load_model


def gathered_state_dict(module: nn.Module, rank: int, trainable_only: bool) -> dict[str, Any]:
    """The full (or trainable-only) state dict on rank 0, {} elsewhere. Under ZeRO-3 each
    module's parameters are gathered in turn (DeepSpeed's `GatheredParameters`, a no-op
    for unpartitioned ones), so at most one module is whole at a time. Every rank calls it."""
    import deepspeed

    state: dict[str, Any] = {}
    for prefix, sub in module.named_modules():
        named = [
            (name, p)
            for name, p in sub.named_parameters(recurse=False)
            if p.requires_grad or not trainable_only
        ]
        if not named:
            continue
        with deepspeed.zero.GatheredParameters([p for _, p in named], modifier_rank=None):
            if rank == 0:
                for name, param in named:
                    key = f"{prefix}.{name}" if prefix else name
                    state[key] = param.detach().cpu().clone()
    if rank == 0 and not trainable_only:  # persistent buffers are not partitioned
        saved = set(module.state_dict())
        state.update({k: b.detach().cpu() for k, b in module.named_buffers() if k in saved})
    return state


def prompt_record(manifest: dict[str, Any]) -> dict[str, Any]:
    """How the training prompts were built (templates, plain or chat template), from the
    data's manifest: written beside each export as prompt_format.json for eval to check."""
    built = manifest.get("prompt_format") or {"chat_template": False}
    return {"template_version": manifest.get("template_version"), **built}


def export_outputs(
    engine: Any, config: TrainConfig, model_path: str, tokenizer: Any, run_dir: Path, rank: int,
    prompts: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Write the exports (rank 0), after gathering on every rank."""
    lm = engine.module.lm
    if rank == 0:  # what a killed export left (atomic_dir's hidden work folders)
        for partial in (run_dir / "export").glob(".*.partial-*"):
            shutil.rmtree(partial, ignore_errors=True)
    state = gathered_state_dict(lm, rank, trainable_only=config.finetune == "lora")
    if rank == 0:
        if config.finetune == "full":
            model = hf_model(lm)
            if getattr(model.config, "tie_word_embeddings", False):
                state.pop("lm_head.weight", None)
            with atomic_dir(run_dir / "export" / "model", overwrite=True) as out:
                model.save_pretrained(out, state_dict=state, safe_serialization=True)
                tokenizer.save_pretrained(out)
                write_prompt_record(out, prompts)
        else:
            with atomic_dir(run_dir / "export" / "adapter", overwrite=True) as out:
                lm.save_pretrained(out, state_dict=state)
                tokenizer.save_pretrained(out)
                write_prompt_record(out, prompts)
            if config.export_merged:
                merge_adapter(
                    model_path,
                    run_dir / "export" / "adapter",
                    run_dir / "export" / "merged",
                    config,
                )
    dist.barrier()


def write_prompt_record(folder: Path, prompts: dict[str, Any] | None) -> None:
    if prompts is not None:
        (Path(folder) / PROMPT_FORMAT_NAME).write_text(json.dumps(prompts, indent=2) + "\n")


def merge_adapter(base: str, adapter: Path, out_dir: Path, config: TrainConfig) -> None:
    """Fold a LoRA adapter into a fresh copy of its base model, loaded in the dtype it was
    trained in (a bf16 run gives a bf16 merged model, half the size of fp32)."""
    model = load_model(base, config.model.trust_remote_code, model_dtype(config))
    merged = core_merge_adapter(model, str(adapter))
    with atomic_dir(out_dir, overwrite=True) as out:
        merged.save_pretrained(out, safe_serialization=True)
        load_tokenizer(str(adapter)).save_pretrained(out)
        if (adapter / PROMPT_FORMAT_NAME).is_file():
            shutil.copy2(adapter / PROMPT_FORMAT_NAME, out / PROMPT_FORMAT_NAME)
