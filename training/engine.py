"""The model source (a hub name, a folder, or the tiny model built on rank 0) and the
DeepSpeed engine around it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from data_prep.contract.tokenizer import load_tokenizer
from training.config import TrainConfig
from training.model import AnswerOnlyLM, add_lora, build_tiny_model, fuse_ops, load_model
from training.schedule import lr_multiplier


def prepare_model_source(
    config: TrainConfig, manifest: dict[str, Any], run_dir: Path, rank: int
) -> tuple[str, Any]:
    """(model folder or hub name, tokenizer); rank 0 builds the tiny model when asked."""
    if not config.model.tiny:
        source = config.model.resolved()
        return source, load_tokenizer(source)
    tokenizer = load_tokenizer(manifest["tokenizer"]["name_or_path"])
    path = run_dir / "tiny-model"
    if rank == 0 and not (path / "config.json").exists():
        m = config.model
        build_tiny_model(
            m.tiny_family, tokenizer, path, m.tiny_hidden, m.tiny_layers, m.tiny_heads, config.seed
        )
    dist.barrier()
    return str(path), tokenizer


def model_dtype(config: TrainConfig) -> torch.dtype:
    return torch.bfloat16 if config.precision == "bf16" else torch.float32


def build_engine(
    config: TrainConfig, ds_config: dict[str, Any], model_path: str, schedule: list[tuple[int, int]]
) -> Any:
    """The DeepSpeed engine around AnswerOnlyLM(model [+ LoRA]), with the per-stage LR."""
    import deepspeed
    from torch.optim.lr_scheduler import LambdaLR
    from transformers.integrations import HfDeepSpeedConfig

    # transformers partitions weights while loading (ZeRO-3) only while an
    # HfDeepSpeedConfig is alive; it lives as long as this call, so later loads (the
    # LoRA merge at export) are plain ones.
    zero3 = ds_config.get("zero_optimization", {}).get("stage") == 3
    hf_ds_config = HfDeepSpeedConfig(ds_config) if zero3 else None
    model = load_model(
        model_path,
        config.model.trust_remote_code,
        model_dtype(config),
        config.activation_checkpointing,
    ).train()  # from_pretrained returns eval mode: no dropout, no activation checkpointing
    if config.model.fused_gelu:  # where the model's family allows it (BLOOM)
        fuse_ops(model)
    if config.finetune == "lora":
        lora = config.lora
        # The adapter's random init follows the seed alone, whatever loading consumed.
        torch.manual_seed(config.seed)
        model = add_lora(model, lora.rank, lora.alpha, lora.dropout, lora.target_modules)
    module = AnswerOnlyLM(model)
    multiplier = lr_multiplier(schedule, config.warmup_ratio)
    engine, *_ = deepspeed.initialize(
        model=module,
        model_parameters=[p for p in module.parameters() if p.requires_grad],
        config=ds_config,
        lr_scheduler=lambda optimizer: LambdaLR(optimizer, multiplier),
    )
    del hf_ds_config
    return engine
