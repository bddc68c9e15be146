"""Loading a tokenizer and naming it: training refuses shards built with another one."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from core.typed_config import ConfigError


def load_tokenizer(path: str) -> Any:
    """A Hugging Face tokenizer by hub name or local folder; it must define EOS."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise ConfigError("tokenizer", [f"cannot load tokenizer {path!r}: {err}"]) from None
    if tokenizer.eos_token_id is None:
        raise ConfigError("tokenizer", [f"{path!r} has no EOS token; samples must end with one"])
    return tokenizer


def tokenizer_identity(tokenizer: Any) -> dict[str, Any]:
    """What identifies a tokenizer: training refuses shards built with another one."""
    vocab = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False).encode()
    return {
        "name_or_path": str(tokenizer.name_or_path),
        "class": type(tokenizer).__name__,
        "vocab_size": len(tokenizer),
        "eos_token_id": tokenizer.eos_token_id,
        "fingerprint": hashlib.sha256(vocab).hexdigest()[:16],
    }
