"""Batched translation decoding.

Greedy decoding uses our own loop over the model's KV cache:
- the prompt prefix shared by every sentence of a direction ("Translate from German to
  English.\\nGerman:") is run once and its cache copied into every row;
- sentences are taken in order of length; a row that ends (EOS, a newline, or
  `max_new_tokens`) leaves the batch at once and new sentences are prefilled and merged
  in, so the batch stays full instead of waiting for its longest member.
Rows may hold padding in the middle of their cache (left padding of each part); the
attention mask covers it, and each token's position is the mask's running sum: BLOOM's
ALiBi takes it from the mask itself, rotary and learned positions (Llama, Qwen, Gemma,
Mistral, unknown families) get it as `position_ids` for the prefill, every step and the
merged batches (core/families.py says which), so every row computes what it would
compute alone. Models with a sliding attention window (Mistral, Gemma 2/3) count padding
inside the window, so their batches are never merged, and are decoded one row at a time
when a prompt and its answer could outgrow the window.
Beam search uses `generate` on length-sorted, left-padded batches. Either way the answer
is cut at EOS or the first newline and outputs come back in input order.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from core.devices import model_device
from core.families import family_of, sliding_window, text_config
from data_prep.contract.chat import PromptFormat

Progress = Callable[[int], None]


@dataclass(frozen=True)
class DecodeConfig:
    """A hypothesis gets `min(max_new_tokens, ceil(length_ratio * source tokens) +
    length_slack)` new tokens: outputs into scripts that take many more tokens than the
    source are not cut, and a sentence that never ends stops near its expected length.
    `max_new_tokens` is the cap over every sentence (`--max-new-tokens`); `length_ratio:
    null` gives every sentence the cap, as before."""

    batch_size: int = 64
    """Sentences decoded together."""
    num_beams: int = 1
    """1: greedy (the batched decoder); more: beam search with `generate`."""
    max_new_tokens: int = 512
    """The cap on every sentence's new tokens."""
    length_ratio: float | None = 4.0
    """New tokens allowed per source token (before the cap); null: the cap for all."""
    length_slack: int = 16
    """New tokens allowed on top of length_ratio x source tokens."""
    refill_fraction: float = 0.25
    """Prefill new rows once this share of the batch is free."""


def new_token_limit(source_tokens: int, config: DecodeConfig) -> int:
    """The new-token budget of one hypothesis (see DecodeConfig)."""
    if config.length_ratio is None:
        return config.max_new_tokens
    wanted = math.ceil(config.length_ratio * source_tokens) + config.length_slack
    return max(1, min(config.max_new_tokens, wanted))


def newline_token_ids(tokenizer: Any) -> set[int]:
    """Ids whose text holds a newline: generation stops there (one batched decode: BLOOM
    has 250,880 ids)."""
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    return {i for i, text in enumerate(texts) if "\n" in text}


def cut(text: str) -> str:
    return text.split("\n", 1)[0].strip()


def common_prefix(rows: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix every row shares (at most all but the last token)."""
    shortest = min(len(r) for r in rows)
    n = 0
    while n < shortest - 1 and all(r[n] == rows[0][n] for r in rows):
        n += 1
    return n


def kv_pairs(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per-layer (keys, values) of a DynamicCache (transformers 4.57 and 5.x alike; the
    legacy tuple conversion is gone in 5)."""
    return [(layer.keys, layer.values) for layer in cache.layers]


def kv_cache(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> Any:
    """A DynamicCache holding `pairs`, built with the public `update` of both versions."""
    from transformers import DynamicCache

    cache = DynamicCache()
    for layer, (keys, values) in enumerate(pairs):
        cache.update(keys, values, layer)
    return cache


def cache_argument(model: nn.Module) -> str:
    """The forward argument (and output field) for the KV cache: transformers 5 renames
    `past_key_values` to `cache` (the old name warns, then goes in 5.40)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def needs_position_ids(model: nn.Module) -> bool:
    """Whether padded rows need explicit `position_ids`: every family whose positions do
    not come from the attention mask, and an unknown one whose forward takes them."""
    family = family_of(text_config(model.config))
    if family.known:
        return family.positions == "ids"
    return "position_ids" in inspect.signature(model.forward).parameters


def positions(mask: torch.Tensor, width: int) -> torch.Tensor:
    """Position ids of the last `width` columns: each row's count of real tokens before
    them (padding, anywhere in the row, takes no position; its own id is never used)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)[:, -width:]


@dataclass
class _Batch:
    """The rows being decoded: the model's cache object, mask, outputs."""

    cache: Any
    mask: torch.Tensor
    last: torch.Tensor
    rows: list[int]
    outputs: list[list[int]] = field(default_factory=list)

    def select(self, keep: list[int]) -> None:
        index = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.mask, self.last = self.mask[index], self.last[index]
        self.rows = [self.rows[i] for i in keep]
        self.outputs = [self.outputs[i] for i in keep]


def _pad_left(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def _merge(a: _Batch | None, b: _Batch) -> _Batch:
    if a is None or not a.rows:
        return b
    width = max(a.mask.shape[1], b.mask.shape[1])
    cache = kv_cache([
        (
            torch.cat([_pad_left(ka, width, 2), _pad_left(kb, width, 2)]),
            torch.cat([_pad_left(va, width, 2), _pad_left(vb, width, 2)]),
        )
        for (ka, va), (kb, vb) in zip(kv_pairs(a.cache), kv_pairs(b.cache), strict=True)
    ])  # fmt: skip
    mask = torch.cat([_pad_left(a.mask, width, 1), _pad_left(b.mask, width, 1)])
    return _Batch(cache, mask, torch.cat([a.last, b.last]), a.rows + b.rows, a.outputs + b.outputs)


class Translator:
    """Decodes prompts with a causal LM; one instance per model."""

    def __init__(
        self, model: nn.Module, tokenizer: Any, config: DecodeConfig,
        tokens: PromptFormat | None = None,
    ) -> None:  # fmt: skip
        self.model, self.tokenizer, self.config = model.eval(), tokenizer, config
        # Prompts are tokenized as training's were (plain, or in the chat template).
        self.tokens = tokens or PromptFormat(tokenizer)
        self.eos = tokenizer.eos_token_id
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos
        self.end_ids = sorted(self.tokens.stop_ids())  # EOS, and a chat turn's end token
        self.stops = newline_token_ids(tokenizer) | set(self.end_ids)
        self._cache_name = cache_argument(model)
        self.device = model_device(model)  # where every input, mask and index is built
        self._limits: list[int] = []
        self.hit_limit: list[bool] = []  # per prompt of the last call: cut at its limit
        self._position_ids = needs_position_ids(model)
        self._window = sliding_window(model.config)

    def limits(self, sources: Sequence[str]) -> list[int]:
        """Each source's new-token budget, from its length in the model's tokens."""
        ids = self.tokenizer(list(sources), add_special_tokens=False)["input_ids"]
        return [new_token_limit(len(row), self.config) for row in ids]

    @torch.inference_mode()
    def translate(
        self, prompts: Sequence[str], progress: Progress | None = None,
        limits: Sequence[int] | None = None,
    ) -> list[str]:  # fmt: skip
        """Translations of `prompts`; `limits`: each one's new-token budget (default the
        cap, `max_new_tokens`). `hit_limit` then says which were cut at their budget."""
        if not prompts:
            return []
        ids = self.tokens.prompt_ids(prompts)
        self._limits = (
            list(limits) if limits is not None else [self.config.max_new_tokens] * len(ids)
        )
        if self.config.num_beams > 1:
            tokens = self.generate(ids, progress, self._limits)
        else:
            tokens = self._greedy(ids, progress)
        self.hit_limit = [
            len(t) >= n and not self.stops.intersection(t[:n])
            for t, n in zip(tokens, self._limits, strict=True)
        ]
        texts = [self.tokenizer.decode(t, skip_special_tokens=True) for t in tokens]
        return [cut(self.tokens.clean(text)) for text in texts]

    # --- greedy: shared prefix, leave-and-refill batching ---------------------------

    def _forward(
        self, input_ids: torch.Tensor, mask: torch.Tensor, cache: Any
    ) -> tuple[torch.Tensor, Any]:
        """Last-position logits; `cache` (a DynamicCache or None) is extended in place."""
        extra = {self._cache_name: cache}
        if self._position_ids:
            extra["position_ids"] = positions(mask, input_ids.shape[1])
        out = self.model(input_ids=input_ids, attention_mask=mask, use_cache=True, **extra)
        return out.logits[:, -1, :], out[self._cache_name]

    def _greedy(self, ids: list[list[int]], progress: Progress | None) -> list[list[int]]:
        n_prefix = common_prefix(ids)
        prefix_cache = None
        if n_prefix:
            prefix = torch.tensor([ids[0][:n_prefix]], device=self.device)
            _, prefix_cache = self._forward(prefix, torch.ones_like(prefix), None)
        queue = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        results: list[list[int]] = [[] for _ in ids]
        active: _Batch | None = None
        size, merge = self._batching(ids)
        while queue or (active is not None and active.rows):
            free = size - (len(active.rows) if active is not None else 0)
            if queue and (
                active is None
                or not active.rows
                or (merge and free >= self.config.refill_fraction * size)
            ):
                take, queue = queue[:free], queue[free:]
                active = _merge(active, self._prefill(ids, take, n_prefix, prefix_cache))
                self._finish(active, results, progress)
                continue
            assert active is not None
            step_mask = torch.cat([active.mask, active.mask.new_ones(len(active.rows), 1)], 1)
            logits, active.cache = self._forward(active.last[:, None], step_mask, active.cache)
            active.mask = step_mask
            self._advance(active, logits)
            self._finish(active, results, progress)
        return results

    def _batching(self, ids: list[list[int]]) -> tuple[int, bool]:
        """(batch size, whether new rows merge into a running batch). Padding counts inside
        a sliding window: such models never merge (a batch's padding is then its prompts'
        length differences), and go one row at a time when a row could outgrow the window."""
        if self._window is None:
            return self.config.batch_size, True
        longest = max(len(r) + limit for r, limit in zip(ids, self._limits, strict=True))
        if longest < self._window:
            return self.config.batch_size, False
        warnings.warn(
            f"a prompt plus its new-token budget ({longest} tokens) outgrows the model's "
            f"{self._window}-token attention window: decoding one sentence at a time",
            stacklevel=3,
        )
        return 1, False

    def _prefill(
        self, ids: list[list[int]], take: list[int], n_prefix: int, prefix_cache: Any
    ) -> _Batch:
        suffixes = [ids[i][n_prefix:] for i in take]
        width = max(len(s) for s in suffixes)
        input_ids = torch.full((len(take), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(take), n_prefix + width), dtype=torch.long)
        mask[:, :n_prefix] = 1
        for row, suffix in enumerate(suffixes):
            input_ids[row, width - len(suffix) :] = torch.tensor(suffix)
            mask[row, n_prefix + width - len(suffix) :] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)  # one copy each
        cache = None
        if prefix_cache is not None:
            cache = kv_cache([
                (
                    k.expand(len(take), -1, -1, -1).contiguous(),
                    v.expand(len(take), -1, -1, -1).contiguous(),
                )
                for k, v in kv_pairs(prefix_cache)
            ])  # fmt: skip
        logits, cache = self._forward(input_ids, mask, cache)
        batch = _Batch(cache, mask, mask.new_zeros(len(take)), list(take), [[] for _ in take])
        self._advance(batch, logits)
        return batch

    def _advance(self, batch: _Batch, logits: torch.Tensor) -> None:
        batch.last = logits.argmax(-1)
        for output, token in zip(batch.outputs, batch.last.tolist(), strict=True):
            output.append(token)

    def _finish(self, batch: _Batch, results: list[list[int]], progress: Progress | None) -> None:
        keep = []
        for i, output in enumerate(batch.outputs):
            if output[-1] in self.stops or len(output) >= self._limits[batch.rows[i]]:
                results[batch.rows[i]] = output
            else:
                keep.append(i)
        done = len(batch.rows) - len(keep)
        if done:
            batch.select(keep)
            if progress is not None:
                progress(done)

    # --- beam search (and the plain reference): generate on sorted batches ------------

    def generate(
        self, ids: list[list[int]], progress: Progress | None, limits: Sequence[int] | None = None
    ) -> list[list[int]]:
        limits = limits or [self.config.max_new_tokens] * len(ids)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        results: list[list[int]] = [[] for _ in ids]
        size = self.config.batch_size
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            limit = max(limits[i] for i in chunk)
            for row, tokens in zip(
                chunk,
                generate_batch(
                    self.model,
                    [ids[i] for i in chunk],
                    self.pad,
                    self.end_ids,
                    self.config,
                    limit,
                ),
                strict=True,
            ):
                results[row] = tokens[: limits[row]]
            if progress is not None:
                progress(len(chunk))
        return results


def generate_batch(
    model: nn.Module, rows: list[list[int]], pad: int, eos: int | list[int], config: DecodeConfig,
    max_new_tokens: int | None = None,
) -> list[list[int]]:  # fmt: skip
    """transformers' `generate` on one left-padded batch (on the model's device; at most
    `max_new_tokens`, default the cap); returns the new tokens per row."""
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, width - len(r) :] = torch.tensor(r)
        mask[i, width - len(r) :] = 1
    device = model_device(model)
    input_ids, mask = input_ids.to(device), mask.to(device)  # built here, moved once each
    out = model.generate(
        input_ids=input_ids, attention_mask=mask,
        max_new_tokens=max_new_tokens or config.max_new_tokens,
        num_beams=config.num_beams, do_sample=False, eos_token_id=eos, pad_token_id=pad,
    )  # fmt: skip
    return [row[width:].tolist() for row in out]
