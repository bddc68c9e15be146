"""Reading prepared shards, length-grouped distributed batches, and exact resume.

A stage's shards are opened with megatron-core's `IndexedDataset` (memory-mapped) and
kept open for the run. Batches are grouped by length so that short AlignInstruct
samples do not pay for long MT ones: each epoch draws a seeded permutation, cuts it
into windows of `group_batches` global batches, sorts each window by length, cuts it
into steps of one global batch, each into micro-batches (a fixed row count, or as many
as a token budget needs), and shuffles the steps. Every rank computes the same plan and takes
its own micro-batches, so the position (epoch, step) is all a checkpoint needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data_prep.contract.manifest import read_manifest
from data_prep.contract.shards import indexed_dataset_module, open_shard

IGNORE = -100


class StageData:
    """All samples of one curriculum stage (token ids and loss masks)."""

    def __init__(self, folder: Path, entry: dict[str, Any]) -> None:
        indexed_dataset_module()  # quiet import
        self.name = entry["name"]
        self.shards = [open_shard(folder / shard["prefix"]) for shard in entry["shards"]]
        sizes = [len(tokens) for tokens, _ in self.shards]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.lengths = np.concatenate(
            [tokens.sequence_lengths for tokens, _ in self.shards] or [np.zeros(0, np.int32)]
        ).astype(np.int64)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        shard = int(np.searchsorted(self.offsets, index, side="right") - 1)
        tokens, mask = self.shards[shard]
        local = index - int(self.offsets[shard])
        return np.array(tokens[local], dtype=np.int64), np.array(mask[local], dtype=np.int64)


def load_stages(data_dir: str | Path) -> list[StageData]:
    manifest = read_manifest(data_dir)
    return [StageData(Path(data_dir) / entry["name"], entry) for entry in manifest["stages"]]


@dataclass(frozen=True)
class BatchPlan:
    """Which samples each rank trains on, step by step, for one epoch.

    A step is `global_batch` consecutive rows of a length-sorted window, whatever the
    world size. Without a token budget it is cut into `grad_accum` micro-batches of
    `micro_batch` rows per rank. With `max_tokens` (padded rows x width <= it), every rank
    takes the same number k >= `grad_accum` of micro-batches in that step, the fewest for
    which an even cut of the step's sorted rows into `world_size * k` micro-batches keeps
    each within the budget and within `micro_batch` rows: short rows share a micro-batch,
    long ones are spread over more. k varies from step to step (train.py marks DeepSpeed's
    accumulation boundary itself); the plan stays a function of (seed, epoch).
    """

    micro_batch: int
    grad_accum: int
    world_size: int
    seed: int
    group_batches: int
    max_tokens: int | None = None

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.grad_accum * self.world_size

    def steps_per_epoch(self, n_samples: int) -> int:
        return n_samples // self.global_batch

    def epoch(self, lengths: np.ndarray, epoch: int) -> list[list[list[int]]]:
        """steps -> micro-batches (all ranks, rank-major) -> sample indices."""
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(lengths))
        n_steps = self.steps_per_epoch(len(lengths))
        usable = n_steps * self.global_batch
        order = order[:usable]
        window = self.global_batch * self.group_batches
        for start in range(0, usable, window):
            chunk = order[start : start + window]
            order[start : start + window] = chunk[np.argsort(lengths[chunk], kind="stable")]
        steps = order.reshape(n_steps, self.global_batch)  # each row: sorted by length
        per_rank = self.micro_batches_per_rank(lengths[steps]) if n_steps else []
        shuffled = rng.permutation(n_steps)
        return [
            [m.tolist() for m in np.array_split(steps[i], self.world_size * per_rank[i])]
            for i in shuffled
        ]

    def micro_batches_per_rank(self, step_lengths: np.ndarray) -> list[int]:
        """For each step (a row of sorted lengths), the micro-batches each rank takes: the
        fewest k >= grad_accum whose even cut fits the token budget."""
        n_steps, rows = step_lengths.shape
        k = np.full(n_steps, self.grad_accum)
        if self.max_tokens is None:
            return k.tolist()
        todo = np.ones(n_steps, dtype=bool)
        for parts_per_rank in range(self.grad_accum, rows // self.world_size + 1):
            parts = self.world_size * parts_per_rank
            sizes = np.full(parts, rows // parts) + (np.arange(parts) < rows % parts)
            last = np.cumsum(sizes) - 1  # the longest row of each micro-batch
            fits = (step_lengths[:, last] * sizes).max(axis=1) <= self.max_tokens
            k[todo & fits] = parts_per_rank
            todo &= ~fits
            if not todo.any():
                return k.tolist()
        longest = int(step_lengths.max())
        raise ValueError(f"a row of {longest} tokens exceeds max_tokens {self.max_tokens}")

    def rank_micro_batches(self, step: list[list[int]], rank: int) -> list[list[int]]:
        per_rank = len(step) // self.world_size
        return step[rank * per_rank : (rank + 1) * per_rank]


def collate(samples: list[tuple[np.ndarray, np.ndarray]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest sample; labels are next tokens where the mask is 1."""
    width = max(len(ids) for ids, _ in samples)
    input_ids = torch.full((len(samples), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(samples), width), dtype=torch.long)
    labels = torch.full((len(samples), width), IGNORE, dtype=torch.long)
    for row, (ids, mask) in enumerate(samples):
        n = len(ids)
        input_ids[row, :n] = torch.from_numpy(ids)
        attention[row, :n] = 1
        target = torch.from_numpy(np.where(mask.astype(bool), ids, IGNORE))
        labels[row, : n - 1] = target[1:]  # position t predicts token t+1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
