"""The FLOP count and the planner read the model family: an untied output layer is not
counted among the blocks' weights, and a block's activations follow its family."""

from __future__ import annotations

from pathlib import Path

import pytest
import transformers.modeling_utils  # noqa: F401  (its first import runs lscpu: not in a unit test)

from core.families import family_named, tiny_config
from tests.conftest import REPO_ROOT
from training.flops import StepFlops
from training.plan import Workload, block_activations, load_plan_config, meta_model, skeleton
from training.presets import FAMILY_PRESET_NAMES, preset_config


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


PUBLISHED = {  # parameter counts of the published checkpoints (tied embeddings once)
    "qwen2.5-1.5b": 1_543_714_304,
    "qwen2.5-7b": 7_615_616_512,
    "llama-3.2-1b": 1_235_814_400,
    "llama-3.2-3b": 3_212_749_824,
    "llama-3.1-8b": 8_030_261_248,
    "gemma-2-2b": 2_614_341_888,
    "gemma-2-9b": 9_241_705_984,
}
FAMILY_CONFIGS = sorted(
    p for p in (REPO_ROOT / "training" / "configs").glob("*.yaml")
    if p.stem.rsplit("-", 1)[0] in PUBLISHED
)  # fmt: skip


@pytest.mark.parametrize("preset", FAMILY_PRESET_NAMES)
def test_family_presets_match_published_sizes(preset: str) -> None:
    config = load_plan_config(None, [f"model.name={preset}", "finetune=lora"])
    shape = skeleton(preset_config(preset), config)
    assert shape.total - shape.trainable == PUBLISHED[preset]
    assert shape.family.name in {"qwen2", "llama", "gemma2"}
    values = preset_config(preset)  # LoRA's default targets: q_proj (h -> heads x d), v_proj
    head_dim = values.get("head_dim", values["hidden_size"] // values["num_attention_heads"])
    q_out = values["num_attention_heads"] * head_dim
    v_out = values["num_key_value_heads"] * head_dim
    per_layer = 8 * (2 * values["hidden_size"] + q_out + v_out)
    assert shape.trainable == values["num_hidden_layers"] * per_layer


@pytest.mark.parametrize("path", FAMILY_CONFIGS, ids=lambda p: p.stem)
def test_family_config_headers_are_the_planners_output(path: Path, tmp_path: Path) -> None:
    from tests.training.test_plan import header_plan
    from training.config import load_train_config
    from training.plan import parse_args, plan

    argv, quoted = header_plan(path)
    result = plan(parse_args([*argv[:1], str(path), *argv[2:]]))
    assert result["fits"] and {key: result[key] for key in quoted} == quoted
    (tmp_path / "manifest.json").write_text("{}")
    assert load_train_config(path, [f"data={tmp_path}"]).model.name in FAMILY_PRESET_NAMES


def test_family_configs_come_in_full_and_lora_pairs() -> None:
    stems = {p.stem for p in FAMILY_CONFIGS}
    assert len(stems) >= 4
    for stem in stems:
        model = stem.rsplit("-", 1)[0]
        assert {f"{model}-full", f"{model}-lora"} <= stems
