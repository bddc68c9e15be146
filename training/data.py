"""Reading prepared shards, length-grouped distributed batches, and exact resume.

A stage's shards are opened with megatron-core's `IndexedDataset` (memory-mapped) and
kept open for the run. Batches are grouped by length so that short AlignInstruct
samples do not pay for long MT ones: each epoch draws a seeded permutation, cuts it
into windows of `group_batches` global batches, sorts each window by length, cuts it
into micro-batches and shuffles the steps. Every rank computes the same plan and takes
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
    """Which samples each rank trains on, step by step, for one epoch."""

    micro_batch: int
    grad_accum: int
    world_size: int
    seed: int
    group_batches: int

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.grad_accum * self.world_size

    def steps_per_epoch(self, n_samples: int) -> int:
        return n_samples // self.global_batch

    def epoch(self, lengths: np.ndarray, epoch: int) -> list[list[list[int]]]:
        """steps -> micro-batches (all ranks, rank-major) -> sample indices."""
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(lengths))
        usable = self.steps_per_epoch(len(lengths)) * self.global_batch
        order = order[:usable]
        window = self.global_batch * self.group_batches
        micro: list[np.ndarray] = []
        for start in range(0, usable, window):
            chunk = order[start : start + window]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            micro.extend(np.split(chunk, len(chunk) // self.micro_batch))
        per_step = self.grad_accum * self.world_size
        steps = [micro[i : i + per_step] for i in range(0, len(micro), per_step)]
        shuffled = rng.permutation(len(steps))
        return [[m.tolist() for m in steps[i]] for i in shuffled]

    def rank_micro_batches(self, step: list[list[int]], rank: int) -> list[list[int]]:
        return step[rank * self.grad_accum : (rank + 1) * self.grad_accum]


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
