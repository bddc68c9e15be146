"""bench/head_flops.py: its meta-device count against a real model's parameters."""

from __future__ import annotations

import pytest
from transformers import BloomConfig, BloomForCausalLM

from bench.head_flops import bloom_flops, head_ratio
from training.flops import StepFlops


@pytest.mark.parametrize(("hidden", "layers", "vocab"), [(64, 2, 4000), (96, 3, 1000)])
def test_shape_formula_matches_transformers(hidden: int, layers: int, vocab: int) -> None:
    model = BloomForCausalLM(BloomConfig(vocab_size=vocab, hidden_size=hidden, n_layer=layers,
                                         n_head=4))  # fmt: skip
    assert bloom_flops(hidden, layers, vocab) == StepFlops.of(model, model.config)


def test_ratio_is_one_when_every_token_is_an_answer_and_grows_with_the_vocabulary() -> None:
    share, ratio = head_ratio(bloom_flops(64, 2, 4000), 50, 1.0)
    assert ratio == pytest.approx(1.0) and 0 < share < 1
    small, large = (head_ratio(bloom_flops(256, 5, v), 50, 0.3)[1] for v in (4000, 250_880))
    assert 1 < small < large
