"""Models: Hugging Face causal LMs (presets, hub names, local folders), tiny random models
of every family (core/families.py) for tests and the demo, LoRA adapters with the
family's default targets, and the answer-only loss module.

The loss module runs the backbone, then the LM head only at positions whose next token
is an answer token: prompt logits are never used, and BLOOM's head is 250,880 wide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.families import (
    ModelFamily,
    backbone,
    family_named,
    family_of,
    softcap_logits,
    text_config,
    tiny_config,
)
from core.models import load_causal_lm
from training.data import IGNORE


def build_tiny_model(
    family: ModelFamily | str,
    tokenizer: Any,
    out_dir: Path,
    hidden: int,
    layers: int,
    heads: int,
    seed: int,
) -> Path:
    """Save a random tiny model of `family` (its record's tiny config) with `tokenizer` to
    `out_dir` (loaded like a checkpoint, so that ZeRO-3 initialisation sees ordinary
    pretrained weights)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from core.fileio import atomic_dir

    family = family_named(family) if isinstance(family, str) else family
    special = {f"{k}_token_id": getattr(tokenizer, f"{k}_token_id") for k in ("bos", "eos", "pad")}
    values = tiny_config(family, len(tokenizer), hidden, layers, heads, special)
    config = AutoConfig.for_model(values.pop("model_type"), **values)
    torch.manual_seed(seed)
    with atomic_dir(out_dir, overwrite=True) as scratch:
        AutoModelForCausalLM.from_config(config).save_pretrained(scratch, safe_serialization=True)
        tokenizer.save_pretrained(scratch)
    return out_dir


def build_tiny_bloom(
    tokenizer: Any, out_dir: Path, hidden: int, layers: int, heads: int, seed: int
) -> Path:
    """A tiny random BLOOM (build_tiny_model for the `bloom` family)."""
    return build_tiny_model("bloom", tokenizer, out_dir, hidden, layers, heads, seed)


def load_model(
    path: str, trust_remote_code: bool, dtype: torch.dtype, activation_checkpointing: bool = False
) -> nn.Module:
    model = load_causal_lm(path, dtype, trust_remote_code)
    if activation_checkpointing:
        # Non-reentrant: recomputation runs through ZeRO-3's parameter hooks and needs no
        # input that requires grad (LoRA freezes the embeddings).
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


class TanhGelu(nn.Module):
    """BLOOM's GELU (the tanh approximation, the same constants) as PyTorch's one fused
    kernel. transformers' BloomGelu runs it as ~8 separate element-wise ops forward and ~10
    in its hand-written backward, each a pass over the 4h-wide MLP activations (slower on
    CPU, memory-bound on GPUs; bench/RESULTS.md). Outputs and gradients agree
    within fp32 rounding (tests/training/test_model.py)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate="tanh")


def fuse_ops(model: nn.Module) -> int:
    """The fused-op swaps `model`'s family allows (only BLOOM's GELU today); the number of
    modules swapped."""
    return fuse_gelu(model) if family_of(text_config(model.config)).fused_gelu else 0


def fuse_gelu(model: nn.Module) -> int:
    """Swap every transformers BloomGelu in `model` for TanhGelu; the number swapped (0 for
    other architectures). It holds no weights: checkpoints and exports are unchanged."""
    swapped = 0
    for module in list(model.modules()):
        for name, child in module.named_children():
            if type(child).__name__ == "BloomGelu":
                setattr(module, name, TanhGelu())
                swapped += 1
    return swapped


def lora_targets(model: nn.Module, targets: list[str]) -> list[str] | str:
    """The configured target modules, or (none given) the model family's default; an
    unknown family's default is every linear layer ("all-linear")."""
    return list(targets) or family_of(text_config(model.config)).lora_target_list()


def add_lora(
    model: nn.Module, rank: int, alpha: int, dropout: float, targets: list[str]
) -> nn.Module:
    """LoRA on `targets` ([]: the family's default targets)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=lora_targets(model, targets),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def hf_model(model: nn.Module) -> nn.Module:
    """The Hugging Face model inside a peft wrapper (LoRA layers stay injected)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class AnswerOnlyLM(nn.Module):
    """forward(input_ids, attention_mask, labels) -> (summed token loss, answer tokens)."""

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        model = hf_model(self.lm)
        # No KV cache: training never reuses it, and building one copies every layer's K, V.
        hidden = backbone(model)(
            input_ids=input_ids, attention_mask=attention_mask, use_cache=False
        )[0]
        selected = labels != IGNORE
        # Gemma 2/3 squash their logits (softcapping) as their own forward does.
        logits = softcap_logits(model, model.get_output_embeddings()(hidden[selected]).float())
        loss = F.cross_entropy(logits, labels[selected], reduction="sum")
        return loss, selected.sum()


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters: peft's own count for a LoRA model; otherwise summed
    here, where ZeRO-3 partitions report their full size as ds_numel."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
        return int(trainable), int(total)
    trainable = total = 0
    for param in model.parameters():
        size = getattr(param, "ds_numel", param.numel())
        total += size
        trainable += size if param.requires_grad else 0
    return trainable, total
