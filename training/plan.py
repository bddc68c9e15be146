"""Memory planner: will a training config fit the cards, and with what micro batch?

    python -m training.plan --config training/configs/bloomz-1b1-full.yaml \
        [--nodes 1 --gpus-per-node 8 --gpu-memory-gb 80 --cpu-memory-gb 1000 --seq-len 512]
    python -m training.plan --matrix         # every preset x {full, LoRA} x 3 clusters x 2 cards

The model's skeleton is built from its config.json on the meta device (no weights; the
BLOOMZ presets' configs ship in `training/presets.py`), LoRA is added by peft on the same
device, and parameters are counted from it. Model states under ZeRO-3 come from
DeepSpeed's own estimator (`estimate_zero3_model_states_mem_needs`) for the trainable
parameters; frozen weights (LoRA) cost their dtype's bytes, partitioned; gathered weights
stay live up to `stage3_max_live_parameters` (1e9 by default). Activations
follow the model family's block (core/families.py: hidden- and MLP-sized tensors per
token, fp32 softmax over heads x seq x seq); with
activation checkpointing only each block's input is kept, plus one block recomputed.
The LM head runs only at answer positions (`--answer-share` of the tokens), in fp32.
The dev loss's forward (`dev_micro_batch_size` rows, no backward) is planned apart and
must fit too.
Loading reads the whole checkpoint on every rank (memory-mapped: once per node in the
page cache). `--device cpu` plans CPU ranks (the rehearsals): one process holds it all.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.families import FALLBACK, ModelFamily, family_of
from core.typed_config import ConfigError
from training.config import TrainConfig, load_train_config
from training.presets import ALL_PRESET_NAMES, model_config_dict

GB = 2**30
# What a rank holds besides the model: CUDA context, NCCL buffers and allocator slack on a
# GPU (kept free, not predicted); on CPU the process itself (torch, DeepSpeed,
# transformers, gloo, DeepSpeed's fixed buffers), measured as the peak of a 77k-parameter
# model at micro batch 1 (bench/RESULTS.md, "Planner against measurement").
GPU_RESERVE_GB = 3.0
CPU_PROCESS_GB = 0.47
# A GPU rank's process on the host (CUDA-enabled torch, DeepSpeed, pinned buffers).
HOST_PROCESS_GB = 4.0


@dataclass(frozen=True)
class Hardware:
    nodes: int = 1
    gpus_per_node: int = 8
    gpu_memory_gb: float = 80.0
    cpu_memory_gb: float = 1000.0
    device: str = "gpu"  # "cpu": ranks are CPU processes, "GPU memory" is each rank's RAM

    @property
    def ranks(self) -> int:
        return self.nodes * self.gpus_per_node

    def label(self) -> str:
        where = f"{self.nodes} node{'s' if self.nodes > 1 else ''} x {self.gpus_per_node}"
        return f"{where} x {self.gpu_memory_gb:g} GB"


@dataclass(frozen=True)
class Skeleton:
    """Parameter counts and the model's shape, from the meta-device model; `family`
    gives the per-layer activation count."""

    total: int
    trainable: int
    largest_layer: int
    hidden: int
    layers: int
    heads: int
    vocab: int
    intermediate: int = 0  # the MLP's width (BLOOM: 4 x hidden)
    family: ModelFamily = FALLBACK


@dataclass(frozen=True)
class Workload:
    micro_batch: int
    seq_len: int
    bytes_per_value: int  # 2 for bf16, 4 for fp32
    checkpointing: bool
    offload: bool
    answer_share: float = 0.5
    max_live_parameters: int = 10**9  # ZeRO-3's stage3_max_live_parameters (its default)
    forward_only: bool = False  # the dev loss: no backward, so no activations kept for one


def meta_model(model_config: dict[str, Any]) -> tuple[Any, Any]:
    """(model, its transformers config) built from a config.json dict on the meta device:
    shapes and parameter counts, no weights."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    values = dict(model_config)
    hf_config = AutoConfig.for_model(values.pop("model_type"), **values)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(hf_config), hf_config


def skeleton(model_config: dict[str, Any], config: TrainConfig) -> Skeleton:
    """Build the model (and its LoRA) on the meta device and count its parameters."""
    import torch

    model, hf_config = meta_model(model_config)
    with torch.device("meta"):
        if config.finetune == "lora":
            from training.model import add_lora

            lora = config.lora
            model = add_lora(model, lora.rank, lora.alpha, lora.dropout, lora.target_modules)
    params = list(model.parameters())  # tied weights come once
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())
    text = hf_config.get_text_config()
    return Skeleton(
        total=sum(p.numel() for p in params),
        trainable=sum(p.numel() for p in params if p.requires_grad),
        largest_layer=largest,
        hidden=text.hidden_size,
        layers=text.num_hidden_layers,
        heads=text.num_attention_heads,
        vocab=text.vocab_size,
        intermediate=getattr(text, "intermediate_size", None) or 4 * text.hidden_size,
        family=family_of(text),
    )


def model_states(shape: Skeleton, hw: Hardware, work: Workload) -> tuple[float, float]:
    """(bytes per rank on the device, bytes per node on the host) for ZeRO-3 model states:
    DeepSpeed's estimate for the trainable parameters, frozen ones at their dtype size."""
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

    cpu, device, _ = estimate_zero3_model_states_mem_needs(
        total_params=shape.trainable,
        largest_layer_params=shape.largest_layer,
        num_gpus_per_node=hw.gpus_per_node,
        num_nodes=hw.nodes,
        cpu_offload=work.offload,
        cpu_offload_params=work.offload,
        zero_init=True,
    )
    frozen = (shape.total - shape.trainable) * work.bytes_per_value
    # Gathered weights stay live up to stage3_max_live_parameters while they will be
    # reused (max_reuse_distance): at the turn from forward to backward, up to the whole
    # model in its dtype; the estimator counts only the largest layer.
    live = min(shape.total, work.max_live_parameters) * work.bytes_per_value
    if work.offload:
        return float(device + live), cpu + frozen / hw.nodes
    return device + live + frozen / hw.ranks, float(cpu)


def block_activations(shape: Skeleton, work: Workload) -> float:
    """Bytes one block keeps for backward: the family's hidden-sized and MLP-sized tensors
    per token (BLOOM: LN inputs and outputs, q/k/v, context, MLP in; 4h out and GELU out),
    and the attention scores, probs and their fp32 softmax."""
    tokens = work.micro_batch * work.seq_len
    width = shape.family.act_hidden * shape.hidden
    width += shape.family.act_intermediate * (shape.intermediate or 4 * shape.hidden)
    hidden = tokens * width * work.bytes_per_value
    scores = shape.heads * work.micro_batch * work.seq_len**2 * (2 * work.bytes_per_value + 4)
    return float(hidden + scores)


def activations(shape: Skeleton, work: Workload) -> float:
    """Every block's activations, or with checkpointing each block's input plus one block
    being recomputed; one more block's worth for backward's gradients in flight. A
    forward without gradients holds one block's input and output."""
    block = block_activations(shape, work)
    if work.forward_only:
        return 2 * block
    if work.checkpointing:
        inputs = (
            shape.layers * work.micro_batch * work.seq_len * shape.hidden * work.bytes_per_value
        )
        return inputs + 2 * block
    return (shape.layers + 1) * block


# The output layer's backward peak per answer x vocab element: three fp32 tensors live at
# once in the cross entropy's backward (the log-softmax it saved, the gradient coming into
# it, the gradient it passes on), whatever the model dtype (the logits in the model dtype
# are freed once copied to fp32). Checked against bench/head_memory.py at 250,880 columns
# (tests/training/test_plan.py; bench/RESULTS.md).
HEAD_BYTES_PER_ELEMENT = 12


def answer_logits(shape: Skeleton, work: Workload) -> float:
    """The LM head at answer positions, at its peak in backward."""
    answers = work.answer_share * work.micro_batch * work.seq_len
    return answers * shape.vocab * HEAD_BYTES_PER_ELEMENT


@dataclass(frozen=True)
class Estimate:
    device_gb: float
    host_gb: float
    states_gb: float
    activations_gb: float
    logits_gb: float
    fits: bool


def estimate(shape: Skeleton, hw: Hardware, work: Workload) -> Estimate:
    states, host_states = model_states(shape, hw, work)
    acts, logits = activations(shape, work), answer_logits(shape, work)
    device = (states + acts + logits) / GB
    # Under ZeRO-3 every rank reads the whole checkpoint (memory-mapped) while it keeps
    # its partition of the weights: the host's peak while loading.
    checkpoint = shape.total * work.bytes_per_value
    loading = (checkpoint + checkpoint / hw.ranks) / GB
    if hw.device == "cpu":  # the rank is a CPU process: its RAM holds everything
        offloaded = (host_states / hw.gpus_per_node if work.offload else 0) / GB
        device = CPU_PROCESS_GB + max(device + offloaded, loading)
        host = device * hw.gpus_per_node
        fits = host <= hw.cpu_memory_gb
    else:
        host = (host_states + checkpoint) / GB + HOST_PROCESS_GB * hw.gpus_per_node
        fits = device <= hw.gpu_memory_gb - GPU_RESERVE_GB and host <= hw.cpu_memory_gb
    return Estimate(device, host, states / GB, acts / GB, logits / GB, fits)


def largest_micro_batch(shape: Skeleton, hw: Hardware, work: Workload, limit: int = 4096) -> int:
    """The largest micro batch that fits (0: not even one row)."""
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        if estimate(shape, hw, replace(work, micro_batch=middle)).fits:
            low = middle
        else:
            high = middle - 1
    return low


def load_plan_config(path: str | None, overrides: list[str]) -> TrainConfig:
    """The training config, loaded and checked as train.py loads it (a path or a shipped
    name); without a file, `data` and `run_dir` are placeholders: the planner reads no
    data."""
    placeholders = [] if path else ["data=unused", "run_dir=unused"]
    return load_train_config(path, [*placeholders, *overrides])


DEFAULT_SEQ_LEN = 512  # the shipped recipes' max_seq_len


def data_seq_len(config: TrainConfig) -> int:
    """The row length to plan for: the shards' `max_seq_len` when the config's data
    folder is built, else the shipped recipes' 512."""
    manifest = Path(config.data) / "manifest.json"
    if manifest.is_file():
        return int(json.loads(manifest.read_text(encoding="utf-8")).get("max_seq_len", 512))
    return DEFAULT_SEQ_LEN


def planned_rows(config: TrainConfig, seq_len: int) -> int:
    """Rows of a micro-batch at the full row length: the micro batch, or what a token
    budget holds of the longest rows (its worst case: activations grow with tokens,
    attention with tokens x row length)."""
    budget = config.max_tokens_per_micro_batch
    if budget is None:
        return config.micro_batch_size
    return max(1, min(config.micro_batch_size, budget // seq_len))


def workload(config: TrainConfig, seq_len: int | None, micro_batch: int | None) -> Workload:
    ds = json.loads(config.deepspeed_path().read_text(encoding="utf-8"))
    seq_len = seq_len or data_seq_len(config)
    return Workload(
        micro_batch=micro_batch or planned_rows(config, seq_len),
        seq_len=seq_len,
        bytes_per_value=2 if config.precision == "bf16" else 4,
        checkpointing=config.activation_checkpointing,
        offload="offload_optimizer" in ds.get("zero_optimization", {}),
        max_live_parameters=int(
            ds.get("zero_optimization", {}).get("stage3_max_live_parameters", 10**9)
        ),
    )


def free_memory(est: Estimate, hw: Hardware) -> dict[str, float]:
    """A GPU's usable memory (less what is kept for CUDA, NCCL and the allocator) and the
    share of it the plan leaves free; the shipped configs keep at least 10% free."""
    if hw.device == "cpu":
        return {}
    usable = hw.gpu_memory_gb - GPU_RESERVE_GB
    return {"usable_gb": round(usable, 2), "free_share": round(1 - est.device_gb / usable, 3)}


def report(config: TrainConfig, shape: Skeleton, hw: Hardware, work: Workload) -> dict[str, Any]:
    est = estimate(shape, hw, work)
    # The dev loss's forward: its own micro batch, at the full row length.
    dev_work = replace(work, micro_batch=config.dev_rows(), forward_only=True)
    dev = estimate(shape, hw, dev_work)
    other = estimate(shape, hw, replace(work, checkpointing=not work.checkpointing))
    return {
        "model": config.model.resolved(),
        "finetune": config.finetune,
        "hardware": hw.label() + (" (CPU ranks)" if hw.device == "cpu" else ""),
        "total_parameters": shape.total,
        "trainable_parameters": shape.trainable,
        "offload": work.offload,
        "micro_batch": work.micro_batch,
        "seq_len": work.seq_len,
        "activation_checkpointing": work.checkpointing,
        "per_rank_gb": round(est.device_gb, 2),
        "model_states_gb": round(est.states_gb, 2),
        "activations_gb": round(est.activations_gb, 2),
        "answer_logits_gb": round(est.logits_gb, 2),
        "per_node_cpu_gb": round(est.host_gb, 1),
        "dev_micro_batch": dev_work.micro_batch,
        "dev_per_rank_gb": round(dev.device_gb, 2),
        "fits": est.fits and dev.fits,
        **free_memory(est, hw),
        "largest_micro_batch": largest_micro_batch(shape, hw, work),
        f"per_rank_gb_{'without' if work.checkpointing else 'with'}_checkpointing": round(
            other.device_gb, 2
        ),
        "largest_micro_batch_other_checkpointing": largest_micro_batch(
            shape, hw, replace(work, checkpointing=not work.checkpointing)
        ),
    }


MATRIX_CLUSTERS = ((1, 1), (1, 8), (4, 8))


def matrix(seq_len: int, checkpointing: bool) -> list[dict[str, Any]]:
    """Every preset x {full, LoRA} x {1 GPU, 8 GPUs, 4 nodes x 8} x {80, 40 GB}; full also
    with ZeRO-3 CPU offload of parameters and optimizer (host memory assumed ample)."""
    rows = []
    for preset in ALL_PRESET_NAMES:
        for finetune in ("full", "lora"):
            config = load_plan_config(None, [f"model.name={preset}", f"finetune={finetune}"])
            shape = skeleton(model_config_dict(preset), config)
            for offload in (False, True) if finetune == "full" else (False,):
                for nodes, gpus in MATRIX_CLUSTERS:
                    row = {"model": preset, "finetune": finetune, "offload": offload,
                           "gpus": f"{nodes}x{gpus}", "trainable": shape.trainable}  # fmt: skip
                    for memory in (80, 40):
                        hw = Hardware(nodes, gpus, memory, 1000.0)
                        work = Workload(1, seq_len, 2, checkpointing, offload)
                        best = largest_micro_batch(shape, hw, work)
                        used = estimate(shape, hw, replace(work, micro_batch=max(best, 1)))
                        row[f"mb_{memory}"] = best
                        row[f"gb_{memory}"] = round(used.device_gb, 1)
                    rows.append(row)
    return rows


def matrix_markdown(rows: list[dict[str, Any]], seq_len: int, checkpointing: bool) -> str:
    head = (
        f"Largest micro batch (seq len {seq_len}, bf16, ZeRO-3, activation checkpointing "
        f"{'on' if checkpointing else 'off'}; 0 = does not fit) and per-GPU GB at that batch\n\n"
        "| model | finetune | offload | GPUs | trainable | 80 GB: micro batch | GB | "
        "40 GB: micro batch | GB |\n|---|---|---|---|---:|---:|---:|---:|---:|"
    )
    lines = [
        f"| {r['model']} | {r['finetune']} | {'yes' if r['offload'] else 'no'} | {r['gpus']} | "
        f"{r['trainable'] / 1e6:,.1f}M | {r['mb_80']} | {r['gb_80']} | {r['mb_40']} | "
        f"{r['gb_40']} |"
        for r in rows
    ]
    return "\n".join([head, *lines])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="training YAML (training/configs/...)")
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--gpus-per-node", type=int, default=8)
    parser.add_argument("--gpu-memory-gb", type=float, default=80.0)
    parser.add_argument("--cpu-memory-gb", type=float, default=1000.0)
    parser.add_argument(
        "--seq-len", type=int, help="row length (default: the shards' max_seq_len, else 512)"
    )
    parser.add_argument("--micro-batch", type=int, help="default: the config's")
    parser.add_argument("--answer-share", type=float, default=0.5, help="answer tokens / tokens")
    parser.add_argument("--device", choices=("gpu", "cpu"), default="gpu",
                        help="cpu: ranks are CPU processes (the rehearsals)")  # fmt: skip
    parser.add_argument("--matrix", action="store_true", help="the table for every preset")
    parser.add_argument("--checkpointing", action="store_true", help="--matrix with it on")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    return parser.parse_args(argv)


def plan(args: argparse.Namespace) -> dict[str, Any]:
    config = load_plan_config(args.config, args.overrides)
    work = replace(workload(config, args.seq_len, args.micro_batch), answer_share=args.answer_share)
    hw = Hardware(args.nodes, args.gpus_per_node, args.gpu_memory_gb, args.cpu_memory_gb,
                  args.device)  # fmt: skip
    name = config.model.resolved() if not config.model.tiny else ""
    if config.model.tiny:
        raise ConfigError(
            "model", ["tiny: plan the folder the run built (model.name=RUN/tiny-model)"]
        )
    return report(config, skeleton(model_config_dict(name), config), hw, work)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        if args.matrix:
            rows = matrix(args.seq_len or DEFAULT_SEQ_LEN, args.checkpointing)
            print(matrix_markdown(rows, args.seq_len or DEFAULT_SEQ_LEN, args.checkpointing))
            return
        if not args.config and not args.overrides:
            raise ConfigError("command line", ["give --config C (or --matrix)"])
        print(json.dumps(plan(args), indent=2))
    except (ConfigError, FileNotFoundError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
