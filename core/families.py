"""Model families: what differs between BLOOM, Llama, Qwen, Gemma and Mistral for training,
eval and the planner, in one frozen record per family, looked up by the Hugging Face
config's `model_type`.

A family the project does not know gets `FALLBACK` (with one warning): positions passed
per row, LoRA on every linear layer, nothing fused. Adding a family is one record in
`FAMILIES` and its tests (docs/model-families.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

# "mask": positions come from the attention mask (BLOOM's ALiBi), a padded row needs
# nothing more; "ids": rotary or learned positions, each padded row needs position_ids
# from its mask's running sum.
Positions = Literal["mask", "ids"]
ALL_LINEAR = ("all-linear",)  # peft's shorthand: every linear layer but the output layer


@dataclass(frozen=True)
class ModelFamily:
    """One architecture family.

    `tied_embeddings` is the family's usual choice; a model's own config.json
    (`tie_word_embeddings`) decides for that model (Qwen2.5 ties at 1.5B, not at 7B).
    `act_hidden` and `act_intermediate`: the hidden-sized and intermediate-sized tensors
    per token one block keeps for backward (the planner's activation count)."""

    name: str
    model_types: tuple[str, ...]
    positions: Positions
    lora_targets: tuple[str, ...]
    tied_embeddings: bool
    act_hidden: int
    act_intermediate: int
    fused_gelu: bool = False  # BLOOM's element-wise GELU swapped for PyTorch's fused one
    # Loaded under ZeRO-3 without the embedding's padding_idx: transformers 4.57 re-runs
    # the weight init of modules holding a non-persistent buffer (Gemma 3's scaled
    # embedding) on partitioned, empty weights, and zeroing the padding row fails there.
    zero3_drop_padding_idx: bool = False
    gated_mlp: bool = True  # tiny config: intermediate_size, kv heads and head_dim keys
    tiny: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    known: bool = True

    def lora_target_list(self) -> list[str] | str:
        """peft's `target_modules`: a list of names, or "all-linear"."""
        return ALL_LINEAR[0] if self.lora_targets == ALL_LINEAR else list(self.lora_targets)


def _frozen(values: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(values)


# Llama-shaped blocks (pre-norm, q/k/v/o, gated SiLU MLP): norm in/out twice, q, k, v,
# context and attention output (9 hidden-sized); gate, up, act(gate), act*up (4 wide).
_LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

FAMILIES: tuple[ModelFamily, ...] = (
    # LN in/out twice, q, k, v, context, MLP input (9); 4h out and GELU out (2 x 4h).
    ModelFamily(
        "bloom", ("bloom",), "mask", ("query_key_value",), tied_embeddings=True,
        act_hidden=9, act_intermediate=2, fused_gelu=True, gated_mlp=False,
        tiny=_frozen({"model_type": "bloom"}),
    ),
    ModelFamily(
        "llama", ("llama",), "ids", ("q_proj", "v_proj"), tied_embeddings=False,
        act_hidden=9, act_intermediate=4, tiny=_frozen({"model_type": "llama"}),
    ),
    ModelFamily(
        "mistral", ("mistral",), "ids", ("q_proj", "v_proj"), tied_embeddings=False,
        act_hidden=9, act_intermediate=4,
        tiny=_frozen({"model_type": "mistral", "sliding_window": 4096}),
    ),
    ModelFamily(
        "qwen2", ("qwen2",), "ids", ("q_proj", "v_proj"), tied_embeddings=True,
        act_hidden=9, act_intermediate=4, tiny=_frozen({"model_type": "qwen2"}),
    ),
    ModelFamily(  # q/k norms: two more hidden-sized tensors
        "qwen3", ("qwen3",), "ids", ("q_proj", "v_proj"), tied_embeddings=True,
        act_hidden=11, act_intermediate=4, tiny=_frozen({"model_type": "qwen3"}),
    ),
    ModelFamily(  # pre- and post-norms around attention and MLP: four more
        "gemma2", ("gemma2",), "ids", ("q_proj", "v_proj"), tied_embeddings=True,
        act_hidden=13, act_intermediate=4,
        tiny=_frozen({"model_type": "gemma2", "sliding_window": 4096}),
    ),
    ModelFamily(  # Gemma 2's block with q/k norms; "gemma3" is the multimodal wrapper
        "gemma3", ("gemma3_text", "gemma3"), "ids", ("q_proj", "v_proj"), tied_embeddings=True,
        act_hidden=15, act_intermediate=4, zero3_drop_padding_idx=True,
        tiny=_frozen({"model_type": "gemma3_text", "sliding_window": 4096}),
    ),
)  # fmt: skip

# Unknown architectures: positions per row (correct for ALiBi too), LoRA on every linear
# layer, nothing swapped, the largest activation count above.
FALLBACK = ModelFamily(
    "unknown", (), "ids", ALL_LINEAR, tied_embeddings=False, act_hidden=15,
    act_intermediate=4, known=False,
)  # fmt: skip

_BY_TYPE = {t: family for family in FAMILIES for t in family.model_types}
_BY_NAME = {family.name: family for family in FAMILIES}
_warned: set[str] = set()


def family_named(name: str) -> ModelFamily:
    """A family by its short name (`bloom`, `llama`, ...); KeyError lists the names."""
    if name not in _BY_NAME:
        raise KeyError(f"{name!r} is not a model family ({', '.join(_BY_NAME)})")
    return _BY_NAME[name]


def family_of(config: Any) -> ModelFamily:
    """The family of a transformers config (or a config.json dict), by `model_type`;
    FALLBACK for an unknown one, with one warning per model_type."""
    model_type = config.get("model_type") if isinstance(config, Mapping) else config.model_type
    family = _BY_TYPE.get(str(model_type))
    if family is not None:
        return family
    if model_type not in _warned:
        _warned.add(str(model_type))
        warnings.warn(
            f"model_type {model_type!r} is not a known model family "
            f"({', '.join(_BY_TYPE)}): positions are passed per row, LoRA targets every "
            "linear layer, no fused ops (add a record to core/families.py)",
            stacklevel=2,
        )
    return FALLBACK


def text_config(config: Any) -> Any:
    """The text model's config (multimodal configs such as Gemma 3's wrap one)."""
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def sliding_window(config: Any) -> int | None:
    """The attention window some layers use (Mistral, Gemma 2/3), or None. Qwen2 keeps
    `sliding_window` None unless `use_sliding_window` is on."""
    text = text_config(config)
    if getattr(text, "use_sliding_window", True) is False:
        return None
    window = getattr(text, "sliding_window", None)
    return int(window) if window else None


def tiny_config(
    family: ModelFamily,
    vocab_size: int,
    hidden: int,
    layers: int,
    heads: int,
    special_ids: Mapping[str, int | None],
    **extra: Any,
) -> dict[str, Any]:
    """A config.json dict for a tiny random model of `family` (tests, the demo):
    `special_ids` holds bos/eos/pad_token_id; GQA families get half as many KV heads."""
    if family.name == "unknown":
        raise ValueError("no tiny model for an unknown family")
    values: dict[str, Any] = {
        **family.tiny,
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "tie_word_embeddings": family.tied_embeddings,
        **{k: v for k, v in special_ids.items() if v is not None},
    }
    if family.gated_mlp:
        values.update(
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=max(1, heads // 2),
            head_dim=hidden // heads,
            intermediate_size=2 * hidden,
            max_position_embeddings=2048,
        )
        if family.name.startswith("gemma"):
            values["query_pre_attn_scalar"] = hidden // heads
    else:
        values.update(n_layer=layers, n_head=heads)
    values.update(extra)
    return values


def backbone(model: Any) -> Any:
    """The transformer under a causal LM's head (`transformer` for BLOOM, `model` for
    Llama-shaped models; Gemma 3's base_model_prefix names its multimodal wrapper's
    attribute, so its decoder is asked for)."""
    inner = getattr(model, model.base_model_prefix, None)
    return inner if inner is not None and inner is not model else model.get_decoder()


def softcap_logits(model: Any, logits: Any) -> Any:
    """The logits as the model's own forward returns them: Gemma 2/3 squash them with
    `final_logit_softcapping` (cap * tanh(logits / cap)); other families leave them."""
    cap = getattr(text_config(model.config), "final_logit_softcapping", None)
    return (logits / cap).tanh() * cap if cap else logits
