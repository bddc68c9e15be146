"""Loading a causal LM (a folder or hub name) and merging a LoRA adapter into it: one
definition for training, its exports and eval."""

from __future__ import annotations

from typing import Any

from core.families import family_of, text_config


def load_causal_lm(path: str, dtype: Any = "auto", trust_remote_code: bool = False) -> Any:
    """`AutoModelForCausalLM.from_pretrained`, with the family quirks that loading needs
    (under ZeRO-3 some families must load without `padding_idx`; see
    ModelFamily.zero3_drop_padding_idx)."""
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.integrations import is_deepspeed_zero3_enabled

    extra: dict[str, Any] = {}
    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    pad = getattr(text_config(config), "pad_token_id", None)
    if is_deepspeed_zero3_enabled() and family_of(text_config(config)).zero3_drop_padding_idx:
        extra["pad_token_id"] = None
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype, trust_remote_code=trust_remote_code, **extra
    )
    if extra:  # the padding row then gets gradients, but padding is masked: none reach it
        text_config(model.config).pad_token_id = pad
    return model


def merge_adapter(model: Any, adapter: str) -> Any:
    """`model` with the LoRA adapter folder `adapter` folded into its weights."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, adapter).merge_and_unload()
