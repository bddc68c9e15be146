"""Typed training config: YAML + `key=value` overrides, validated before any rank starts.

Batch arithmetic has one source of truth: `train_batch_size = micro_batch_size *
grad_accum * world_size` (`TrainConfig.train_batch_size`). A recipe states
`global_batch_size` (rows per optimizer step) and `grad_accum` follows from it, the micro
batch and the world size, so 1 x 8 and 2 x 8 GPUs train the same steps; a combination that
does not divide is a config error before launch. Without `global_batch_size`, `grad_accum`
(default 1) is taken as given and the global batch grows with the world size (the old
behaviour); with both, they must agree. The DeepSpeed JSON in `ds_configs/` keeps "auto"
for every value the code fills (batch sizes, optimizer and scheduler, precision); a
concrete value there that disagrees with this config is an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.families import FAMILIES
from core.resources import resolve, shipped_names
from core.typed_config import ConfigError, load_config

MODEL_PRESETS = {
    "bloomz-560m": "bigscience/bloomz-560m",
    "bloomz-1b1": "bigscience/bloomz-1b1",
    "bloomz-3b": "bigscience/bloomz-3b",
    "bloomz-7b1": "bigscience/bloomz-7b1",
}
# Current open models (training/presets.py holds their config.json for offline planning).
FAMILY_PRESETS = {
    "qwen2.5-1.5b": "Qwen/Qwen2.5-1.5B-Instruct",
    "qwen2.5-7b": "Qwen/Qwen2.5-7B-Instruct",
    "llama-3.2-1b": "meta-llama/Llama-3.2-1B-Instruct",
    "llama-3.2-3b": "meta-llama/Llama-3.2-3B-Instruct",
    "llama-3.1-8b": "meta-llama/Llama-3.1-8B-Instruct",
    "gemma-2-2b": "google/gemma-2-2b-it",
    "gemma-2-9b": "google/gemma-2-9b-it",
}
FAMILY_NAMES = tuple(f.name for f in FAMILIES)
# Shipped DeepSpeed JSON (package `ds_configs`), by name: zero3, zero3_offload, zero2.
DS_CONFIGS_PACKAGE = "ds_configs"
# Shipped training configs (package `training.configs`), by name: tiny-cpu, bloomz-1b1-full...
CONFIGS_PACKAGE = "training.configs"


@dataclass(frozen=True)
class ModelConfig:
    """`name`: a preset (bloomz-560m ... bloomz-7b1, qwen2.5-1.5b, llama-3.2-1b, ...), a hub
    name, or a local folder.
    `tiny`: build a tiny random model of `tiny_family` (core/families.py: bloom, llama,
    mistral, qwen2, qwen3, gemma2, gemma3) with the data's tokenizer instead (tests, demo).
    `fused_gelu`: train BLOOM with PyTorch's fused tanh GELU instead of transformers'
    element-wise one (the same function; see training/model.py TanhGelu); other families
    have no such swap."""

    name: str = "bloomz-560m"
    """A preset (bloomz-560m ... bloomz-7b1, qwen2.5-1.5b, llama-3.2-1b, ...), a hub name
    or a local folder."""
    tiny: bool = False
    """Build a tiny random model of `tiny_family` with the data's tokenizer instead."""
    tiny_family: str = "bloom"
    """The tiny model's family (core/families.py)."""
    tiny_hidden: int = 64
    """The tiny model's hidden size."""
    tiny_layers: int = 2
    """The tiny model's layers."""
    tiny_heads: int = 4
    """The tiny model's attention heads."""
    trust_remote_code: bool = False
    """Let transformers run the model folder's own code."""
    fused_gelu: bool = True
    """BLOOM: PyTorch's fused tanh GELU for transformers' element-wise one (same function)."""

    def resolved(self) -> str:
        return {**MODEL_PRESETS, **FAMILY_PRESETS}.get(self.name, self.name)


@dataclass(frozen=True)
class LoraConfig:
    rank: int = 8
    """The adapter's rank r."""
    alpha: int = 16
    """LoRA's alpha: the update is scaled by alpha / rank."""
    dropout: float = 0.05
    """Dropout on the adapter's input."""
    target_modules: list[str] = field(default_factory=list)
    """Module names to adapt; empty: the family's default (BLOOM query_key_value; Llama,
    Qwen, Gemma, Mistral q_proj, v_proj; unknown: every linear layer). Checked against the
    model before any rank starts."""

    def problems(self, key: str) -> list[str]:
        found = [] if self.rank >= 1 else [f"{key}.rank: must be >= 1"]
        return found + ([] if 0.0 <= self.dropout < 1.0 else [f"{key}.dropout: must be in [0, 1)"])


@dataclass(frozen=True)
class TrainConfig:
    data: str
    """The data-prep build folder (its manifest.json and shards)."""
    run_dir: str
    """Where checkpoints, metrics, the resolved config and the exports go."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The model to fine-tune."""
    finetune: Literal["full", "lora"] = "full"
    """Full fine-tuning, or a LoRA adapter on the frozen model."""
    lora: LoraConfig = field(default_factory=LoraConfig)
    """The adapter (with finetune=lora)."""
    deepspeed: str = "zero3"
    """A DeepSpeed JSON file or a shipped name (zero3 for GPUs, zero3_cpu, zero3_offload,
    zero2); its "auto" keys are filled from this config."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """Weights and compute precision."""
    activation_checkpointing: bool = False
    """Recompute each block's activations in the backward pass (less memory, more time)."""
    micro_batch_size: int = 8
    """Rows per micro-batch per rank (with a token budget: at most)."""
    global_batch_size: int | None = None
    """Rows per optimizer step over all ranks: the same run on any number of GPUs."""
    grad_accum: int | None = None
    """Micro-batches per step per rank; derived from global_batch_size, else 1."""
    max_tokens_per_micro_batch: int | None = None
    """Pack micro-batches by this token budget (padded rows x width): a step's rows are cut
    into as few micro-batches per rank as fit."""
    epochs_per_stage: list[float] = field(default_factory=lambda: [1.0])
    """Epochs of each curriculum stage (one value: every stage)."""
    max_steps_per_stage: int | None = None
    """Cap each stage at this many optimizer steps."""
    lr: float = 2e-5
    """Peak learning rate (warm-up, then linear decay to zero, within each stage)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_ratio: float = 0.01
    """Share of each stage's steps spent warming up the LR."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this."""
    seed: int = 1
    """Seed of the batch order, dropout, the tiny model and the adapter's init."""
    log_every: int = 10
    """Log a metrics row every N steps."""
    eval_every: int | None = None
    """Dev loss every N steps (and at each stage end), when the build has a dev split."""
    dev_micro_batch_size: int | None = None
    """Rows per dev-loss micro-batch per rank; null: micro_batch_size. The dev forward keeps
    no activations for a backward, so it fits more rows (the planner checks it)."""
    save_every: int = 500
    """Checkpoint every N steps (and at each stage end)."""
    keep_last: int = 2
    """Checkpoints kept."""
    resume: Literal["auto", "never"] = "auto"
    """auto: continue from the newest checkpoint in run_dir that loads."""
    export_merged: bool = False
    """LoRA: also export the base model with the adapter merged in."""
    length_group_batches: int = 64
    """Global batches per length-sorted window (less padding, still shuffled steps)."""

    def dev_rows(self) -> int:
        """Rows per dev-loss micro-batch: `dev_micro_batch_size`, else the training one."""
        return self.dev_micro_batch_size or self.micro_batch_size

    def problems(self, key: str) -> list[str]:
        found = []
        for name in ("micro_batch_size", "log_every"):
            if getattr(self, name) < 1:
                found.append(f"{name}: must be >= 1")
        for name in (
            "global_batch_size", "grad_accum", "max_tokens_per_micro_batch",
            "dev_micro_batch_size",
        ):  # fmt: skip
            if getattr(self, name) is not None and getattr(self, name) < 1:
                found.append(f"{name}: must be >= 1 (or null)")
        for name in ("save_every", "keep_last", "length_group_batches"):
            if getattr(self, name) < 1:
                found.append(f"{name}: must be >= 1")
        if self.lr <= 0:
            found.append("lr: must be > 0")
        if self.model.tiny and self.model.tiny_family not in FAMILY_NAMES:
            found.append(
                f"model.tiny_family: {self.model.tiny_family!r} is not one of "
                f"{', '.join(FAMILY_NAMES)}"
            )
        if any(e <= 0 for e in self.epochs_per_stage) or not self.epochs_per_stage:
            found.append("epochs_per_stage: one or more values > 0")
        if self.eval_every is not None and self.eval_every < 1:
            found.append("eval_every: must be >= 1 (or null: dev loss at stage ends only)")
        if self.max_steps_per_stage is not None and self.max_steps_per_stage < 1:
            found.append("max_steps_per_stage: must be >= 1 (or null)")
        if not self.deepspeed_path().is_file():
            found.append(
                f"deepspeed: {self.deepspeed!r} is neither a file nor a shipped config "
                f"{shipped_names(DS_CONFIGS_PACKAGE, '.json')}"
            )
        return found

    def batch_problems(self, world_size: int) -> list[str]:
        """What is wrong with the batch arithmetic on `world_size` ranks (checked with the
        other inputs before launch)."""
        micro, accum, wanted = self.micro_batch_size, self.grad_accum, self.global_batch_size
        if wanted is None or micro < 1 or wanted < 1 or (accum is not None and accum < 1):
            return []  # the legacy arithmetic, or a problem problems() names already
        per_step = micro * world_size
        if accum is None and wanted % per_step:
            return [
                f"global_batch_size: {wanted} is not a multiple of micro_batch_size ({micro}) "
                f"x world size ({world_size}) = {per_step}; change one of them"
            ]
        if accum is not None and accum * per_step != wanted:
            return [
                f"grad_accum: {accum} disagrees with global_batch_size {wanted} = "
                f"micro_batch_size ({micro}) x grad_accum x world size ({world_size}); "
                "leave grad_accum unset (null) to derive it"
            ]
        return []

    def grad_accum_for(self, world_size: int) -> int:
        """Micro-batches per rank per optimizer step (with a token budget: the fewest)."""
        problems = self.batch_problems(world_size)
        if problems:
            raise ConfigError("config", problems)
        if self.global_batch_size is None:
            return self.grad_accum or 1
        return self.global_batch_size // (self.micro_batch_size * world_size)

    def train_batch_size(self, world_size: int) -> int:
        """Rows per optimizer step over all ranks: the one place this product is taken."""
        return self.micro_batch_size * self.grad_accum_for(world_size) * world_size

    def deepspeed_path(self) -> Path:
        """A JSON path, or a shipped DeepSpeed config by name (`zero3`)."""
        return resolve(self.deepspeed, DS_CONFIGS_PACKAGE, ".json")


def load_train_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """A config file, or a shipped config by name (`tiny-cpu`, `bloomz-1b1-lora`)."""
    return load_config(TrainConfig, path and resolve(path, CONFIGS_PACKAGE, ".yaml"), overrides)


def _fill(ds: dict[str, Any], key: str, value: Any, problems: list[str]) -> None:
    """Fill an "auto" (or absent) key; a concrete value must agree with the code's."""
    current = ds.get(key, "auto")
    if current == "auto":
        ds[key] = value
    elif current != value:
        problems.append(f"deepspeed JSON {key}={current!r} disagrees with the config ({value!r})")


def deepspeed_config(config: TrainConfig, world_size: int) -> dict[str, Any]:
    """The DeepSpeed JSON with every "auto" filled from the typed config."""
    path = config.deepspeed_path()
    try:
        ds = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(str(path), [f"cannot read DeepSpeed JSON: {err}"]) from None
    problems: list[str] = []
    _fill(ds, "train_micro_batch_size_per_gpu", config.micro_batch_size, problems)
    _fill(ds, "gradient_accumulation_steps", config.grad_accum_for(world_size), problems)
    _fill(ds, "train_batch_size", config.train_batch_size(world_size), problems)
    _fill(ds, "gradient_clipping", config.grad_clip, problems)
    ds["bf16"] = {"enabled": config.precision == "bf16"}
    ds.setdefault("steps_per_print", 10**9)
    ds.setdefault("wall_clock_breakdown", False)
    optimizer = ds.setdefault("optimizer", {"type": "AdamW", "params": {}})
    params = optimizer.setdefault("params", {})
    for name, value in (("lr", config.lr), ("weight_decay", config.weight_decay)):
        if params.get(name, "auto") == "auto":
            params[name] = value
    offloaded = "offload_optimizer" in ds.get("zero_optimization", {})
    if not offloaded:  # ZeRO-Offload needs DeepSpeedCPUAdam; elsewhere plain torch AdamW
        params.setdefault("torch_adam", True)
    if "scheduler" in ds:
        problems.append(
            "deepspeed JSON: remove 'scheduler'; the LR schedule is set per stage by train.py"
        )
    if problems:
        raise ConfigError(str(path), problems)
    return ds
