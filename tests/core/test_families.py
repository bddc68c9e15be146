"""The model-family records: each family's tiny config builds a model of that family whose
module names hold the default LoRA targets and whose embeddings are tied as recorded; an
unknown model_type falls back to safe behaviour with one warning."""

from __future__ import annotations

import warnings

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel

from core.families import (
    FALLBACK,
    FAMILIES,
    ModelFamily,
    family_named,
    family_of,
    sliding_window,
    tiny_config,
)

SPECIAL = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 3}


def build(family: ModelFamily, **extra: object) -> tuple[PreTrainedModel, PretrainedConfig]:
    values = tiny_config(family, 300, 32, 2, 4, SPECIAL, **extra)
    config = AutoConfig.for_model(values.pop("model_type"), **values)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config), config


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_tiny_config_builds_the_family_it_describes(family: ModelFamily) -> None:
    model, config = build(family)
    assert family_of(config) is family and family_of(config.to_dict()) is family
    assert config.hidden_size == 32 and config.num_hidden_layers == 2
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    assert set(family.lora_targets) <= names, names
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert tied == family.tied_embeddings
    assert (family.positions == "mask") == (family.name == "bloom")
    assert family.fused_gelu == any(type(m).__name__ == "BloomGelu" for m in model.modules())


def test_lookup_by_name_and_sliding_windows() -> None:
    assert family_named("qwen2").model_types == ("qwen2",)
    with pytest.raises(KeyError, match="llama"):
        family_named("gpt9")
    _, mistral = build(family_named("mistral"))
    _, qwen2 = build(family_named("qwen2"))
    _, bloom = build(family_named("bloom"))
    assert sliding_window(mistral) == 4096
    assert sliding_window(qwen2) is None and sliding_window(bloom) is None


def test_unknown_family_falls_back_with_one_warning() -> None:
    config = AutoConfig.for_model("gpt2", n_embd=32, n_layer=1, n_head=2)
    with pytest.warns(UserWarning, match="'gpt2' is not a known model family"):
        family = family_of(config)
    assert family is FALLBACK and not family.known
    assert family.positions == "ids" and family.lora_target_list() == "all-linear"
    assert not family.fused_gelu
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert family_of({"model_type": "gpt2"}) is FALLBACK  # warned once per model_type
    with pytest.raises(ValueError, match="unknown"):
        tiny_config(FALLBACK, 300, 32, 2, 4, SPECIAL)
