"""Rank-0 logging: progress bar, a JSONL line per log interval, TensorBoard, summary.json.

The logger only records: every count it receives is already summed over the ranks by
train.py. A `loss` row is the token-weighted mean over the logging interval (the sum of
the interval's token losses over its answer tokens) and `lr` the rate its last step used.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from core.devices import host_peak_bytes
from core.fileio import atomic_open
from training.checkpoints import LossWindow, ResumePosition
from training.config import TrainConfig
from training.flops import peak_flops


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return host_peak_bytes() / 2**20


def card_peak_flops() -> float | None:
    """The dense bf16 peak of this rank's GPU (None on CPU or an unknown card)."""
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    peak = peak_flops(name)
    if peak is None:
        print(f"no peak FLOP/s known for {name!r}: tokens/s only, no MFU", flush=True)
    return peak


@dataclass(frozen=True)
class StepCounts:
    """One optimizer step, summed over micro-batches and ranks."""

    loss_sum: float  # summed token losses
    answer_tokens: int
    tokens: int  # real (non-padding) tokens
    padded_tokens: int  # tokens including padding
    flops: float = 0.0  # what the step needed (training/flops.py), for MFU
    grad_norm: float | None = None  # the global gradient norm before clipping


def trim_metrics(path: Path, last_step: int) -> int:
    """Drop the rows past `last_step` (a killed run's, about to be logged again) by an
    atomic rewrite; returns how many were dropped."""
    if not path.exists():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= last_step]
    if len(kept) != len(lines):
        with atomic_open(path) as handle:
            handle.writelines(line + "\n" for line in kept)
    return len(lines) - len(kept)


class MetricsLogger:
    def __init__(
        self,
        run_dir: Path,
        rank: int,
        config: TrainConfig,
        world: int,
        parameters: tuple[int, int],
        position: ResumePosition | None,
    ) -> None:
        """`parameters`: (trainable, total); `position`: where a resumed run continues."""
        self.rank, self.config, self.world = rank, config, world
        self.run_dir = run_dir
        self.trainable, self.total = parameters
        self.bar: tqdm | None = None
        self.stage = ""
        # Totals and the interval's loss sums carry over a resume (saved with checkpoints).
        base = {"tokens": 0, "answer_tokens": 0, "padded_tokens": 0, "steps": 0, "seconds": 0.0}
        self.totals = {**base, **(position.totals if position else {})}
        self.window = position.window if position else LossWindow()
        self._launched = time.perf_counter()
        self._seconds_before = self.totals["seconds"]
        self._speed = {"tokens": 0, "padded": 0, "flops": 0.0, "started": time.perf_counter()}
        self.jsonl = self.writer = None
        self.peak_per_card = card_peak_flops()
        if rank == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            resumed_at = position.global_step if position else 0
            dropped = trim_metrics(run_dir / "metrics.jsonl", resumed_at)
            if dropped:
                print(f"metrics.jsonl: dropped {dropped} row(s) past step {resumed_at}")
            self.jsonl = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115
            from torch.utils.tensorboard import SummaryWriter

            # purge_step hides the killed run's events past the resumed step.
            purge = resumed_at + 1 if position else None
            self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge)
            print(f"trainable parameters: {self.trainable:,} of {self.total:,}", flush=True)

    def start_stage(self, name: str, steps: int, first: int) -> None:
        self.stage = name
        if self.rank == 0:
            if self.bar is not None:
                self.bar.close()
            self.bar = tqdm(total=steps, initial=first, desc=name, unit="step", dynamic_ncols=True)

    def step(self, step: int, lr: float, counts: StepCounts) -> None:
        """Record one optimizer step (`lr`: the rate it used); a row every `log_every`."""
        self.totals["tokens"] += counts.tokens
        self.totals["padded_tokens"] += counts.padded_tokens
        self.totals["answer_tokens"] += counts.answer_tokens
        self.totals["steps"] += 1
        self.window = LossWindow(
            self.window.loss_sum + counts.loss_sum,
            self.window.answer_tokens + counts.answer_tokens,
        )
        self._speed["tokens"] += counts.tokens
        self._speed["padded"] += counts.padded_tokens
        self._speed["flops"] += counts.flops
        if step % self.config.log_every:
            if self.bar is not None:
                self.bar.update(1)
            return
        loss = self.window.loss_sum / max(self.window.answer_tokens, 1)
        self.window = LossWindow()
        if self.rank != 0:
            return
        assert self.bar is not None
        self.bar.update(1)
        seconds = time.perf_counter() - self._speed["started"]
        line = {
            "step": step,
            "stage": self.stage,
            "loss": loss,
            "lr": lr,
            "tokens_per_s": self._speed["tokens"] / max(seconds, 1e-9),
            "padding_share": 1 - self._speed["tokens"] / max(self._speed["padded"], 1),
            "peak_memory_mb": peak_memory_mb(),
            "grad_norm": counts.grad_norm,
        }
        mfu = self.mfu(self._speed["flops"] / max(seconds, 1e-9))
        if mfu is not None:  # a card in training/flops.py's table (or a given peak)
            line["mfu"] = mfu
        self._speed = {"tokens": 0, "padded": 0, "flops": 0.0, "started": time.perf_counter()}
        self.bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{line['tokens_per_s']:.0f}")
        self._write(line)
        for key in ("loss", "lr", "tokens_per_s", "padding_share", "peak_memory_mb"):
            self.writer.add_scalar(f"train/{key}", line[key], step)

    def dev(self, step: int, loss: float, tokens: int) -> None:
        """A held-out loss row: token-mean loss over the dev shards."""
        if self.rank != 0:
            return
        self._write({"step": step, "stage": self.stage, "dev_loss": loss, "dev_tokens": tokens})
        self.writer.add_scalar("dev/loss", loss, step)
        if self.bar is not None:
            self.bar.write(f"step {step}: dev loss {loss:.4f} over {tokens:,} answer tokens")

    def _write(self, line: dict[str, Any]) -> None:
        assert self.jsonl is not None and self.writer is not None
        self.jsonl.write(json.dumps(line) + "\n")
        self.jsonl.flush()

    def mfu(self, flops_per_s: float) -> float | None:
        """Model FLOPs utilisation: the FLOPs the steps needed (training/flops.py: the
        embedding is a lookup, the output layer runs at answer positions) over the peak of
        this run's cards (bf16 dense, by device name); None on CPU or an unknown card."""
        if self.peak_per_card is None:
            return None
        return flops_per_s / (self.peak_per_card * self.world)

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
            "model": self.config.model.resolved()
            if not self.config.model.tiny
            else f"tiny-{self.config.model.tiny_family}",
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
