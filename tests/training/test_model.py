"""training/model.py: the fused GELU computes what transformers' BLOOM GELU computes."""

from __future__ import annotations

import copy

import torch
from transformers import BloomConfig, BloomForCausalLM, GPT2Config, GPT2LMHeadModel

from training.model import TanhGelu, fuse_gelu


def test_fused_gelu_matches_bloom_outputs_and_gradients() -> None:
    torch.manual_seed(0)
    config = BloomConfig(vocab_size=300, hidden_size=64, n_layer=3, n_head=4)
    plain = BloomForCausalLM(config).train()
    fused = copy.deepcopy(plain)
    assert fuse_gelu(fused) == 3
    assert sum(isinstance(m, TanhGelu) for m in fused.modules()) == 3
    assert fused.state_dict().keys() == plain.state_dict().keys()  # exports unchanged
    ids = torch.randint(0, 300, (4, 23))
    outputs = [model(input_ids=ids, labels=ids) for model in (plain, fused)]
    for out in outputs:
        out.loss.backward()
    torch.testing.assert_close(outputs[1].logits, outputs[0].logits, rtol=1e-5, atol=1e-6)
    grads = dict(plain.named_parameters())
    for name, param in fused.named_parameters():
        torch.testing.assert_close(param.grad, grads[name].grad, rtol=1e-4, atol=1e-6, msg=name)
    # The check can fail: a GELU of another formula is far outside that tolerance.
    x = torch.linspace(-4, 4, 101)
    assert (TanhGelu()(x) - torch.nn.functional.gelu(x)).abs().max() > 1e-4


def test_other_architectures_are_left_alone() -> None:
    model = GPT2LMHeadModel(GPT2Config(vocab_size=100, n_embd=32, n_layer=1, n_head=2))
    assert fuse_gelu(model) == 0
