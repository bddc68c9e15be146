"""The FLOP count and the planner read the model family: an untied output layer is not
counted among the blocks' weights, and a block's activations follow its family."""

from __future__ import annotations

import pytest
import transformers.modeling_utils  # noqa: F401  (its first import runs lscpu: not in a unit test)

from core.families import family_named, tiny_config
from training.flops import StepFlops
from training.plan import Workload, block_activations, load_plan_config, meta_model, skeleton
from training.presets import preset_config


@pytest.mark.parametrize("name", ["llama", "qwen2", "bloom"])
def test_step_flops_take_an_untied_output_layer_out_of_the_blocks(name: str) -> None:
    family = family_named(name)
    model, hf_config = meta_model(tiny_config(family, 1000, 32, 2, 4, {}))
    flops = StepFlops.of(model, hf_config)
    total = sum(p.numel() for p in model.parameters())
    heads = 1 if family.tied_embeddings else 2  # an own output layer: V x h more weights
    assert flops.block_params == total - heads * 1000 * 32
    assert flops(([10]), 1) - flops([10], 0) == 6 * 32 * 1000  # the head per answer token


def test_block_activations_follow_the_family() -> None:
    work = Workload(micro_batch=2, seq_len=64, bytes_per_value=2, checkpointing=False,
                    offload=False)  # fmt: skip
    config = load_plan_config(None, ["model.name=bloomz-560m"])
    bloom = skeleton(preset_config("bloomz-560m"), config)
    scores = bloom.heads * 2 * 64**2 * (2 * 2 + 4)
    assert block_activations(bloom, work) == 17 * 2 * 64 * 1024 * 2 + scores  # as before
    llama = skeleton(tiny_config(family_named("llama"), 1000, 64, 2, 4, {}), config)
    assert llama.family.name == "llama" and llama.intermediate == 128
    per_token = (9 * 64 + 4 * 128) * 2
    assert block_activations(llama, work) == 2 * 64 * per_token + 4 * 2 * 64**2 * 8
