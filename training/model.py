"""Models: Hugging Face causal LMs (BLOOMZ presets, hub names, local folders), a tiny
random BLOOM for tests and the demo, LoRA adapters, and the answer-only loss module.

The loss module runs the backbone, then the LM head only at positions whose next token
is an answer token: prompt logits are never used, and BLOOM's head is 250,880 wide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from training.data import IGNORE


def build_tiny_bloom(
    tokenizer: Any, out_dir: Path, hidden: int, layers: int, heads: int, seed: int
) -> Path:
    """Save a random tiny BLOOM with `tokenizer` to `out_dir` (loaded like a checkpoint,
    so that ZeRO-3 initialisation sees ordinary pretrained weights)."""
    from transformers import BloomConfig, BloomForCausalLM

    from core.fileio import atomic_dir

    torch.manual_seed(seed)
    config = BloomConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        n_layer=layers,
        n_head=heads,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with atomic_dir(out_dir, overwrite=True) as scratch:
        BloomForCausalLM(config).save_pretrained(scratch, safe_serialization=True)
        tokenizer.save_pretrained(scratch)
    return out_dir


def load_model(
    path: str, trust_remote_code: bool, dtype: torch.dtype, activation_checkpointing: bool = False
) -> nn.Module:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype, trust_remote_code=trust_remote_code
    )
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


def add_lora(
    model: nn.Module, rank: int, alpha: int, dropout: float, targets: list[str]
) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=targets,
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
        backbone = getattr(model, model.base_model_prefix)
        # No KV cache: training never reuses it, and building one copies every layer's K, V.
        hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)[0]
        selected = labels != IGNORE
        logits = model.get_output_embeddings()(hidden[selected]).float()
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
