"""The BLOOMZ presets' architecture, as in their published config.json, so that the planner
and the rehearsals work offline: no hub, no weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training.config import MODEL_PRESETS

# Shared by every BLOOM(Z) size: tied embeddings, ALiBi, the 250,880-token vocabulary.
_COMMON: dict[str, Any] = {
    "architectures": ["BloomForCausalLM"],
    "model_type": "bloom",
    "vocab_size": 250880,
    "apply_residual_connection_post_layernorm": False,
    "attention_dropout": 0.0,
    "hidden_dropout": 0.0,
    "attention_softmax_in_fp32": True,
    "bias_dropout_fusion": True,
    "masked_softmax_fusion": True,
    "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05,
    "offset_alibi": 100,
    "pretraining_tp": 1,
    "slow_but_exact": False,
    "skip_bias_add": True,
    "skip_bias_add_qkv": False,
    "unk_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 3,
    "use_cache": True,
}
_SHAPES = {  # hidden size, layers, attention heads
    "bloomz-560m": (1024, 24, 16),
    "bloomz-1b1": (1536, 24, 16),
    "bloomz-3b": (2560, 30, 32),
    "bloomz-7b1": (4096, 30, 32),
}
PRESET_NAMES = tuple(_SHAPES)
assert set(_SHAPES) == set(MODEL_PRESETS)


def preset_config(name: str) -> dict[str, Any]:
    """config.json of a preset (a short name or its hub name)."""
    short = {hub: short for short, hub in MODEL_PRESETS.items()}.get(name, name)
    if short not in _SHAPES:
        raise KeyError(f"{name!r} is not a preset ({', '.join(PRESET_NAMES)})")
    hidden, layers, heads = _SHAPES[short]
    return {**_COMMON, "hidden_size": hidden, "n_layer": layers, "n_head": heads}


def is_preset(name: str) -> bool:
    return name in _SHAPES or name in MODEL_PRESETS.values()


def model_config_dict(name: str) -> dict[str, Any]:
    """config.json of a preset, or read from a local model folder."""
    if is_preset(name):
        return preset_config(name)
    path = Path(name) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise FileNotFoundError(f"{path}: cannot read a model config ({err})") from None
