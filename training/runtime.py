"""The pieces of train.py that talk to DeepSpeed: schedule, engine, checkpoints, exports."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from core.typed_config import ConfigError
from data_prep.contract.tokenizer import load_tokenizer, tokenizer_identity
from training.config import TrainConfig
from training.data import BatchPlan, StageData
from training.model import AnswerOnlyLM, add_lora, build_tiny_bloom, hf_model, load_model

_KEEP_ALIVE: list[Any] = []  # HfDeepSpeedConfig must outlive from_pretrained under ZeRO-3


def stage_schedule(
    config: TrainConfig, plan: BatchPlan, stages: list[StageData]
) -> list[tuple[int, int]]:
    """(optimizer steps, steps per epoch) for every stage."""
    epochs = config.epochs_per_stage
    if len(epochs) not in (1, len(stages)):
        raise ConfigError(
            "epochs_per_stage",
            [f"give 1 value or {len(stages)} (one per stage), not {len(epochs)}"],
        )
    schedule = []
    for index, stage in enumerate(stages):
        per_epoch = plan.steps_per_epoch(len(stage))
        if per_epoch == 0:
            problem = f"stage {stage.name} has {len(stage)} samples, fewer than one global batch"
            raise ConfigError("data", [f"{problem} ({plan.global_batch})"])
        steps = max(1, round(epochs[index if len(epochs) > 1 else 0] * per_epoch))
        if config.max_steps_per_stage is not None:
            steps = min(steps, config.max_steps_per_stage)
        schedule.append((steps, per_epoch))
    return schedule


def lr_multiplier(schedule: list[tuple[int, int]], warmup_ratio: float):
    """Linear warmup then linear decay to zero, restarting at each stage."""
    bounds = [0]
    for steps, _ in schedule:
        bounds.append(bounds[-1] + steps)

    def multiplier(step: int) -> float:
        stage = next((i for i in range(len(schedule)) if step < bounds[i + 1]), len(schedule) - 1)
        local, total = step - bounds[stage], schedule[stage][0]
        warm = max(1, int(warmup_ratio * total)) if warmup_ratio > 0 else 0
        if local < warm:
            return (local + 1) / warm
        return max(0.0, (total - local) / max(1, total - warm))

    return multiplier


def check_tokenizer(config: TrainConfig, manifest: dict[str, Any]) -> None:
    """Refuse shards built with another tokenizer than the model's."""
    if config.model.tiny:  # the tiny model is built with the data's own tokenizer
        return
    data_tok = manifest["tokenizer"]
    source = config.model.resolved()
    if tokenizer_identity(load_tokenizer(source))["fingerprint"] != data_tok["fingerprint"]:
        raise ConfigError("data", [
            f"the shards in {config.data} were built with tokenizer {data_tok['name_or_path']!r} "
            f"(fingerprint {data_tok['fingerprint']}), not the tokenizer of {source!r}; "
            "rebuild the shards with tokenizer=<the model>"
        ])  # fmt: skip


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
        build_tiny_bloom(tokenizer, path, m.tiny_hidden, m.tiny_layers, m.tiny_heads, config.seed)
    dist.barrier()
    return str(path), tokenizer


def build_engine(
    config: TrainConfig, ds_config: dict[str, Any], model_path: str, schedule: list[tuple[int, int]]
):
    import deepspeed
    from torch.optim.lr_scheduler import LambdaLR
    from transformers.integrations import HfDeepSpeedConfig

    if ds_config.get("zero_optimization", {}).get("stage") == 3:
        _KEEP_ALIVE.append(HfDeepSpeedConfig(ds_config))
    dtype = torch.bfloat16 if config.precision == "bf16" else torch.float32
    model = load_model(
        model_path, config.model.trust_remote_code, dtype, config.activation_checkpointing
    ).train()  # from_pretrained returns eval mode: no dropout, no activation checkpointing
    if config.finetune == "lora":
        lora = config.lora
        model = add_lora(model, lora.rank, lora.alpha, lora.dropout, lora.target_modules)
    module = AnswerOnlyLM(model)
    multiplier = lr_multiplier(schedule, config.warmup_ratio)
    engine, *_ = deepspeed.initialize(
        model=module,
        model_parameters=[p for p in module.parameters() if p.requires_grad],
        config=ds_config,
        lr_scheduler=lambda optimizer: LambdaLR(optimizer, multiplier),
    )
    return engine


class Checkpoints:
    """DeepSpeed checkpoints under one folder, newest `keep` kept."""

    def __init__(self, folder: Path, keep: int, rank: int) -> None:
        self.folder, self.keep, self.rank = folder, keep, rank

    def save(self, engine: Any, position: dict[str, int]) -> None:
        tag = f"step{position['global_step']:08d}"
        engine.save_checkpoint(str(self.folder), tag=tag, client_state={"position": position})
        dist.barrier()
        if self.rank == 0:
            tags = sorted(p for p in self.folder.glob("step*") if p.is_dir())
            for old in tags[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        dist.barrier()

    def resume(self, engine: Any) -> dict[str, int]:
        if not (self.folder / "latest").exists():
            return {}
        path, client = engine.load_checkpoint(str(self.folder))
        if path is None:
            raise RuntimeError(f"{self.folder}: 'latest' names a checkpoint that cannot be loaded")
        return dict(client["position"])


def _gathered_state(engine: Any) -> dict[str, torch.Tensor] | None:
    """The full state dict on rank 0 (gathered from ZeRO-3 partitions), without the
    AnswerOnlyLM prefix; None on other ranks."""
    if engine.zero_optimization_stage() == 3:
        state = engine._zero3_consolidated_16bit_state_dict()
    else:
        state = engine.module.state_dict() if dist.get_rank() == 0 else None
    if state is None:
        return None
    return {key.removeprefix("lm."): value.detach().cpu() for key, value in state.items()}


def export_outputs(
    engine: Any, config: TrainConfig, model_path: str, tokenizer: Any, run_dir: Path, rank: int
) -> None:
    """export/model (full fine-tuning) or export/adapter (+ export/merged) for LoRA."""
    from core.fileio import atomic_dir

    state = _gathered_state(engine)
    if rank == 0:
        assert state is not None
        lm = engine.module.lm
        if config.finetune == "full":
            model = hf_model(lm)
            if getattr(model.config, "tie_word_embeddings", False):
                state.pop("lm_head.weight", None)
            with atomic_dir(run_dir / "export" / "model", overwrite=True) as out:
                model.save_pretrained(out, state_dict=state, safe_serialization=True)
                tokenizer.save_pretrained(out)
        else:
            with atomic_dir(run_dir / "export" / "adapter", overwrite=True) as out:
                lm.save_pretrained(out, state_dict=state)
                tokenizer.save_pretrained(out)
            if config.export_merged:
                _KEEP_ALIVE.clear()  # a plain load now: ZeRO-3 must not partition the base
                merge_adapter(
                    model_path,
                    run_dir / "export" / "adapter",
                    run_dir / "export" / "merged",
                    config,
                )
    dist.barrier()


def merge_adapter(base: str, adapter: Path, out_dir: Path, config: TrainConfig) -> None:
    """Fold a LoRA adapter into a fresh copy of its base model and save it."""
    from peft import PeftModel

    from core.fileio import atomic_dir

    model = load_model(base, config.model.trust_remote_code, torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    with atomic_dir(out_dir, overwrite=True) as out:
        merged.save_pretrained(out, safe_serialization=True)
        load_tokenizer(str(adapter)).save_pretrained(out)
