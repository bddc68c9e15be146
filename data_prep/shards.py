"""Tokenize instruction samples in worker processes and write megatron-core shards.

Each stage folder holds shard pairs: `shard-00000.{bin,idx}` (token ids, one
sequence and one document per sample) and `shard-00000_mask.{bin,idx}` (uint8 loss
mask, 1 on answer tokens and EOS), both written with megatron-core's
`IndexedDatasetBuilder` and readable with its `IndexedDataset`. Tokenization runs in
a process pool with a bounded number of batches in flight, so memory stays flat
however large the input is.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from core.fileio import sha256_file
from data_prep.contract.chat import ChatFormat, PromptFormat
from data_prep.contract.shards import MASK_SUFFIX, indexed_dataset_module
from data_prep.contract.tokenizer import load_tokenizer


@dataclass
class Encoded:
    """A batch of tokenized samples: ids concatenated, with per-sample lengths."""

    ids: np.ndarray
    lengths: np.ndarray
    prompt_lengths: np.ndarray
    truncated: int = 0
    dropped: int = 0
    kept: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


_WORKER_TOKENIZER: Any = None


def _init_worker(path: str) -> None:
    global _WORKER_TOKENIZER
    # One process per core already: the Rust tokenizer must not start threads of its own.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _WORKER_TOKENIZER = load_tokenizer(path)


def encode_batch(
    tokenizer: Any, batch: list[tuple[str, str]], max_len: int, chat: ChatFormat | None = None
) -> Encoded:
    """Tokenize prompts and answers as `PromptFormat` does (plain: the prompt with the
    tokenizer's own special tokens, the answer, EOS; `chat`: in the chat template).

    A sample longer than `max_len` keeps its prompt and loses the end of its answer
    (and its EOS: a cut answer must not teach the model to stop there); a sample whose
    prompt alone leaves no room for one answer token is dropped.
    """
    tokens = PromptFormat(tokenizer, chat or False)
    prompts = tokens.prompt_ids([p for p, _ in batch])
    answers = tokens.answer_ids([a for _, a in batch])
    pieces, lengths, prompt_lengths, kept = [], [], [], []
    truncated = dropped = 0
    for prompt, answer in zip(prompts, answers, strict=True):
        ids = prompt + answer
        if len(ids) > max_len:
            if len(prompt) >= max_len:
                dropped += 1
                kept.append(False)
                continue
            ids = ids[:max_len]
            truncated += 1
        pieces.append(ids)
        lengths.append(len(ids))
        prompt_lengths.append(len(prompt))
        kept.append(True)
    flat = np.fromiter(chain.from_iterable(pieces), dtype=np.int64, count=sum(lengths))
    return Encoded(
        flat,
        np.asarray(lengths, dtype=np.int64),
        np.asarray(prompt_lengths, dtype=np.int64),
        truncated,
        dropped,
        np.asarray(kept, dtype=bool),
    )


def _encode_in_worker(batch: list[tuple[str, str]], max_len: int) -> Encoded:
    return encode_batch(_WORKER_TOKENIZER, batch, max_len)


def encode_stream(
    batches: Iterable[list[tuple[str, str]]], tokenizer_path: str, max_len: int, workers: int
) -> Iterator[Encoded]:
    """Encode batches in order; at most `2 * workers` batches are in flight."""
    if workers <= 1:
        tokenizer = load_tokenizer(tokenizer_path)
        for batch in batches:
            yield encode_batch(tokenizer, batch, max_len)
        return
    # fork: workers start in milliseconds instead of re-importing transformers; the
    # parent has not run the Rust tokenizer's thread pool yet, so forking is safe.
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    context = mp.get_context(method)
    with context.Pool(workers, initializer=_init_worker, initargs=(tokenizer_path,)) as pool:
        pending: deque = deque()
        for batch in batches:
            pending.append(pool.apply_async(_encode_in_worker, (batch, max_len)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


@dataclass
class ShardInfo:
    prefix: str
    sequences: int
    tokens: int
    files: dict[str, str]


class ShardWriter:
    """Writes token and mask shards of at most `max_tokens` tokens each."""

    def __init__(self, folder: Path, dtype: type[np.integer], max_tokens: int) -> None:
        self._builder_cls = indexed_dataset_module().IndexedDatasetBuilder
        self.folder, self.dtype, self.max_tokens = folder, dtype, max_tokens
        self.shards: list[ShardInfo] = []
        self._tokens = self._mask = None
        self._count = self._size = 0
        folder.mkdir(parents=True, exist_ok=True)

    def _prefix(self, index: int) -> Path:
        return self.folder / f"shard-{index:05d}"

    def _open(self) -> None:
        prefix = self._prefix(len(self.shards))
        self._tokens = self._builder_cls(f"{prefix}.bin", dtype=self.dtype)
        self._mask = self._builder_cls(f"{prefix}{MASK_SUFFIX}.bin", dtype=np.uint8)
        self._count = self._size = 0

    def add(self, encoded: Encoded) -> None:
        """Append a batch: one document (of one sequence) per sample. The samples go in
        runs that fit the current shard, one write per run (not per sample)."""
        lengths = encoded.lengths
        ends = np.cumsum(lengths)
        starts = ends - lengths
        position = np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(starts, lengths)
        mask = (position >= np.repeat(encoded.prompt_lengths, lengths)).astype(np.uint8)
        first = 0
        while first < len(lengths):
            if self._tokens is None or self._size + int(lengths[first]) > self.max_tokens:
                self._close_current()
                self._open()
            room = self.max_tokens - self._size
            fit = int(np.searchsorted(ends[first:] - starts[first], room, side="right"))
            last = first + max(1, fit)  # a sample longer than a shard gets one of its own
            span = slice(int(starts[first]), int(ends[last - 1]))
            self._write(encoded.ids[span], mask[span], lengths[first:last].tolist())
            first = last

    def _write(self, ids: np.ndarray, mask: np.ndarray, lengths: list[int]) -> None:
        for builder, data in ((self._tokens, ids), (self._mask, mask)):
            before = len(builder.sequence_lengths)
            builder.add_document(data, lengths)
            # add_document made the run one document: split it, one per sample.
            builder.document_indices[-1:] = range(before + 1, before + len(lengths) + 1)
        self._count += len(lengths)
        self._size += sum(lengths)

    def _close_current(self) -> None:
        if self._tokens is None:
            return
        prefix = self._prefix(len(self.shards))
        self._tokens.finalize(f"{prefix}.idx")
        self._mask.finalize(f"{prefix}{MASK_SUFFIX}.idx")
        names = [f"{prefix.name}{suffix}" for suffix in (".bin", ".idx")]
        names += [f"{prefix.name}{MASK_SUFFIX}{suffix}" for suffix in (".bin", ".idx")]
        files = {name: sha256_file(self.folder / name) for name in names}
        self.shards.append(ShardInfo(prefix.name, self._count, self._size, files))
        self._tokens = self._mask = None

    def close(self) -> list[ShardInfo]:
        self._close_current()
        return self.shards
