"""Reading prepared shards: the on-disk format that data prep writes and training reads.

A stage folder holds pairs of megatron-core indexed datasets: `shard-NNNNN.{bin,idx}`
(token ids, one sequence and one document per sample) and `shard-NNNNN_mask.{bin,idx}`
(uint8 loss mask, 1 on answer tokens and EOS). Ids are uint16 while the vocabulary fits,
int32 beyond.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

MASK_SUFFIX = "_mask"
UINT16_LIMIT = 65_500


def indexed_dataset_module() -> Any:
    """megatron-core's indexed_dataset, imported without its Apex/TE fallback warnings."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Transformer Engine and Apex.*")
        from megatron.core.datasets import indexed_dataset
    return indexed_dataset


def token_dtype(vocab_size: int) -> type[np.integer]:
    """uint16 while the ids fit, int32 beyond (BLOOM's 250,880 needs int32)."""
    return np.uint16 if vocab_size < UINT16_LIMIT else np.int32


def open_shard(prefix: str | os.PathLike[str]) -> tuple[Any, Any]:
    """(tokens, mask) megatron-core IndexedDatasets of one shard prefix."""
    dataset = indexed_dataset_module().IndexedDataset
    return dataset(str(prefix), mmap=True), dataset(f"{prefix}{MASK_SUFFIX}", mmap=True)
