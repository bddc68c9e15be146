"""Rank-0 logging: progress bar, a JSONL line per log interval, TensorBoard, summary.json."""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from training.config import TrainConfig
from training.flops import StepFlops
from training.model import count_parameters, hf_model


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _grad_norm(engine: Any) -> float | None:
    """The global gradient norm of the last optimizer step (before clipping)."""
    norm = engine.get_global_grad_norm()
    return None if norm is None else float(norm)


class MetricsLogger:
    def __init__(
        self,
        run_dir: Path,
        rank: int,
        engine: Any,
        config: TrainConfig,
        world: int,
        totals: dict[str, float] | None = None,
    ) -> None:
        self.rank, self.config, self.engine, self.world = rank, config, engine, world
        self.run_dir = run_dir
        self.trainable, self.total = count_parameters(engine.module)
        self.flops = StepFlops.of(engine.module, hf_model(engine.module.lm).config)
        self.bar: tqdm | None = None
        self.stage = ""
        # Totals carry over a resume (they are saved with each checkpoint).
        base = {"tokens": 0, "answer_tokens": 0, "padded_tokens": 0, "steps": 0, "seconds": 0.0}
        self.totals = {**base, **(totals or {})}
        self._launched = time.perf_counter()
        self._seconds_before = self.totals["seconds"]
        self._window = {"tokens": 0, "padded": 0, "flops": 0.0, "started": time.perf_counter()}
        self.jsonl = self.writer = None
        if rank == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            self.jsonl = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / "tensorboard"))
            print(f"trainable parameters: {self.trainable:,} of {self.total:,}", flush=True)

    def start_stage(self, name: str, steps: int, first: int) -> None:
        self.stage = name
        if self.rank == 0:
            if self.bar is not None:
                self.bar.close()
            self.bar = tqdm(total=steps, initial=first, desc=name, unit="step", dynamic_ncols=True)

    def step(
        self, step: int, loss: float, batches: list[dict[str, torch.Tensor]], answer_tokens: int
    ) -> None:
        lengths = [int(n) for b in batches for n in b["attention_mask"].sum(1)]
        answers = sum(int((b["labels"] != -100).sum()) for b in batches)
        counts = torch.tensor(
            [
                sum(float(b["attention_mask"].sum()) for b in batches),
                sum(float(b["input_ids"].numel()) for b in batches),
                self.flops(lengths, answers),
            ],
            dtype=torch.float64,
        )
        dist.all_reduce(counts)
        real, padded = int(counts[0]), int(counts[1])
        self._window["flops"] += float(counts[2])
        self.totals["tokens"] += real
        self.totals["padded_tokens"] += padded
        self.totals["answer_tokens"] += answer_tokens
        self.totals["steps"] += 1
        self._window["tokens"] += real
        self._window["padded"] += padded
        if self.rank != 0:
            return
        assert self.bar is not None
        self.bar.update(1)
        if step % self.config.log_every:
            return
        seconds = time.perf_counter() - self._window["started"]
        line = {
            "step": step,
            "stage": self.stage,
            "loss": loss,
            "lr": self.engine.get_lr()[0],
            "tokens_per_s": self._window["tokens"] / max(seconds, 1e-9),
            "padding_share": 1 - self._window["tokens"] / max(self._window["padded"], 1),
            "peak_memory_mb": peak_memory_mb(),
            "grad_norm": _grad_norm(self.engine),
        }
        if torch.cuda.is_available():
            line["mfu"] = self.mfu(self._window["flops"] / max(seconds, 1e-9))
        self._window = {"tokens": 0, "padded": 0, "flops": 0.0, "started": time.perf_counter()}
        self.bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{line['tokens_per_s']:.0f}")
        assert self.jsonl is not None and self.writer is not None
        self.jsonl.write(json.dumps(line) + "\n")
        self.jsonl.flush()
        for key in ("loss", "lr", "tokens_per_s", "padding_share", "peak_memory_mb"):
            self.writer.add_scalar(f"train/{key}", line[key], step)

    def mfu(self, flops_per_s: float) -> float:
        """Model FLOPs utilisation: the FLOPs the steps needed (training/flops.py: the
        embedding is a lookup, the output layer runs at answer positions) over the cards'
        peak (bf16 dense; ALIGNINSTRUCT_PEAK_TFLOPS per GPU, default 989 for an H100 SXM)."""
        peak = float(os.environ.get("ALIGNINSTRUCT_PEAK_TFLOPS", "989")) * 1e12 * self.world
        return flops_per_s / peak

    def totals_now(self) -> dict[str, float]:
        """The running totals, with training seconds summed over every launch."""
        seconds = self._seconds_before + time.perf_counter() - self._launched
        return {**self.totals, "seconds": seconds}

    def close(self) -> None:
        totals = self.totals_now()
        if self.rank != 0:
            return
        if self.bar is not None:
            self.bar.close()
        assert self.jsonl is not None and self.writer is not None
        self.jsonl.close()
        self.writer.close()
        summary = {
            "finetune": self.config.finetune,
            "model": self.config.model.resolved() if not self.config.model.tiny else "tiny-bloom",
            "trainable_parameters": self.trainable,
            "total_parameters": self.total,
            "world_size": self.world,
            **{k: v for k, v in totals.items() if k != "seconds"},
            "padding_share": 1 - totals["tokens"] / max(totals["padded_tokens"], 1),
            "tokens_per_second": totals["tokens"] / max(totals["seconds"], 1e-9),
            "wall_seconds": totals["seconds"],
            "peak_memory_mb": peak_memory_mb(),
        }
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
