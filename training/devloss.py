"""Held-out loss on the build's dev shards (`manifest["dev"]`), shared by the ranks.

Each rank takes every world-th sample of the length-sorted dev set, in micro-batches of
similar length; the summed token losses and answer tokens are all-reduced, so the result
is the token-mean loss over the whole dev set, whatever the world size. Under ZeRO-3
every forward gathers parameters collectively, so every rank runs the same number of
forwards: a rank whose share ran out repeats a sample and ignores its loss.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from core.devices import collective_device
from training.data import StageData, collate


class DevLoss:
    def __init__(self, data: StageData, micro_batch: int, rank: int, world: int) -> None:
        self.data = data
        order = np.argsort(data.lengths, kind="stable")
        mine = order[rank::world].tolist()
        count = math.ceil(math.ceil(len(order) / world) / micro_batch)
        self.batches = [mine[i * micro_batch : (i + 1) * micro_batch] for i in range(count)]
        self.filler = [int(order[0])]

    def __call__(self, engine: Any, pad_id: int) -> tuple[float, int]:
        """(token-mean loss, answer tokens) over the whole dev set; every rank calls it."""
        sums = torch.zeros(2, dtype=torch.float64, device=collective_device())
        engine.eval()
        with torch.no_grad():
            for ids in self.batches:
                batch = collate([self.data[i] for i in ids or self.filler], pad_id)
                loss, count = engine(**{k: v.to(engine.device) for k, v in batch.items()})
                if ids:  # summed where the loss is: no read back per micro-batch
                    sums += torch.stack([loss.double(), count.double()]).to(sums.device)
        engine.train()
        dist.all_reduce(sums)
        loss_sum, tokens = sums.tolist()  # read back once
        return loss_sum / max(tokens, 1), int(tokens)
