"""Rank-0 logging: progress bar, a JSONL line per log interval, TensorBoard, summary.json."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from training.config import TrainConfig
from training.model import count_parameters


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class MetricsLogger:
    def __init__(
        self, run_dir: Path, rank: int, engine: Any, config: TrainConfig, world: int
    ) -> None:
        self.rank, self.config, self.engine, self.world = rank, config, engine, world
        self.run_dir = run_dir
        self.trainable, self.total = count_parameters(engine.module)
        self.bar: tqdm | None = None
        self.stage = ""
        self.totals = {"tokens": 0, "answer_tokens": 0, "padded_tokens": 0, "steps": 0}
        self._window = {"tokens": 0, "padded": 0, "started": time.perf_counter()}
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
        counts = torch.tensor(
            [
                sum(float(b["attention_mask"].sum()) for b in batches),
                sum(float(b["input_ids"].numel()) for b in batches),
            ]
        )
        dist.all_reduce(counts)
        real, padded = int(counts[0]), int(counts[1])
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
        }
        self._window = {"tokens": 0, "padded": 0, "started": time.perf_counter()}
        self.bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{line['tokens_per_s']:.0f}")
        assert self.jsonl is not None and self.writer is not None
        self.jsonl.write(json.dumps(line) + "\n")
        self.jsonl.flush()
        for key in ("loss", "lr", "tokens_per_s", "padding_share", "peak_memory_mb"):
            self.writer.add_scalar(f"train/{key}", line[key], step)

    def close(self, wall_seconds: float) -> None:
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
            **self.totals,
            "padding_share": 1 - self.totals["tokens"] / max(self.totals["padded_tokens"], 1),
            "tokens_per_second": self.totals["tokens"] / max(wall_seconds, 1e-9),
            "wall_seconds": wall_seconds,
            "peak_memory_mb": peak_memory_mb(),
        }
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
