"""The presets' architecture, as in their published config.json, so that the planner and
the rehearsals work offline: no hub, no weights. BLOOMZ (the paper's model) and current
open models of other families (Qwen2.5, Llama 3.x, Gemma 2; their instruction-tuned
checkpoints share the base models' shapes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training.config import FAMILY_PRESETS, MODEL_PRESETS

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
PRESET_NAMES = tuple(_SHAPES)  # BLOOMZ
assert set(_SHAPES) == set(MODEL_PRESETS)

_QWEN2 = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu",
          "max_position_embeddings": 32768, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
          "use_sliding_window": False, "sliding_window": 32768, "attention_dropout": 0.0,
          "bos_token_id": 151643, "eos_token_id": 151645}  # fmt: skip
_LLAMA3 = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
           "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
           "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                            "original_max_position_embeddings": 8192, "rope_type": "llama3"},
           "vocab_size": 128256, "attention_bias": False, "mlp_bias": False,
           "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]}  # fmt: skip
_GEMMA2 = {"architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "head_dim": 256,
           "hidden_activation": "gelu_pytorch_tanh", "max_position_embeddings": 8192,
           "query_pre_attn_scalar": 256, "sliding_window": 4096, "rms_norm_eps": 1e-06,
           "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0,
           "vocab_size": 256000, "tie_word_embeddings": True,
           "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0}  # fmt: skip
# (base, hidden, layers, heads, KV heads, MLP width, extra keys): their config.json.
_FAMILY_SHAPES: dict[str, tuple[dict[str, Any], int, int, int, int, int, dict[str, Any]]] = {
    "qwen2.5-1.5b": (_QWEN2, 1536, 28, 12, 2, 8960,
                     {"vocab_size": 151936, "tie_word_embeddings": True}),
    "qwen2.5-7b": (_QWEN2, 3584, 28, 28, 4, 18944,
                   {"vocab_size": 152064, "tie_word_embeddings": False}),
    "llama-3.2-1b": (_LLAMA3, 2048, 16, 32, 8, 8192, {"head_dim": 64, "tie_word_embeddings": True,
                     "rope_scaling": {**_LLAMA3["rope_scaling"], "factor": 32.0}}),
    "llama-3.2-3b": (_LLAMA3, 3072, 28, 24, 8, 8192, {"head_dim": 128, "tie_word_embeddings": True,
                     "rope_scaling": {**_LLAMA3["rope_scaling"], "factor": 32.0}}),
    "llama-3.1-8b": (_LLAMA3, 4096, 32, 32, 8, 14336, {"tie_word_embeddings": False}),
    "gemma-2-2b": (_GEMMA2, 2304, 26, 8, 4, 9216, {}),
    "gemma-2-9b": (_GEMMA2, 3584, 42, 16, 8, 14336, {}),
}  # fmt: skip
assert set(_FAMILY_SHAPES) == set(FAMILY_PRESETS)
FAMILY_PRESET_NAMES = tuple(_FAMILY_SHAPES)
ALL_PRESET_NAMES = PRESET_NAMES + FAMILY_PRESET_NAMES


def preset_config(name: str) -> dict[str, Any]:
    """config.json of a preset (a short name or its hub name)."""
    hubs = {**MODEL_PRESETS, **FAMILY_PRESETS}
    short = {hub: short for short, hub in hubs.items()}.get(name, name)
    if short in _FAMILY_SHAPES:
        base, hidden, layers, heads, kv_heads, mlp, extra = _FAMILY_SHAPES[short]
        return {**base, "hidden_size": hidden, "num_hidden_layers": layers,
                "num_attention_heads": heads, "num_key_value_heads": kv_heads,
                "intermediate_size": mlp, **extra}  # fmt: skip
    if short not in _SHAPES:
        raise KeyError(f"{name!r} is not a preset ({', '.join(ALL_PRESET_NAMES)})")
    hidden, layers, heads = _SHAPES[short]
    return {**_COMMON, "hidden_size": hidden, "n_layer": layers, "n_head": heads}


def is_preset(name: str) -> bool:
    hubs = {**MODEL_PRESETS, **FAMILY_PRESETS}
    return name in hubs or name in hubs.values()


def model_config_dict(name: str) -> dict[str, Any]:
    """config.json of a preset, or read from a local model folder."""
    if is_preset(name):
        return preset_config(name)
    path = Path(name) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise FileNotFoundError(f"{path}: cannot read a model config ({err})") from None
