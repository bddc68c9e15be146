"""Real shapes without the hub: a tokenizer as wide as BLOOM's, a random model with a
preset's exact config, and shards built with that tokenizer (rehearsals, the GPU check,
the real-width test).

The tokenizer is a byte-level BPE trained on the corpus, widened to BLOOM's 250,880 ids
with vocabulary entries that never occur in text (`<unused-N>`): ids, shard dtype (int32),
embedding and output layer all have the real width, and decoding any id works.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BLOOM_VOCAB = 250_880


def widen_tokenizer(source: Path, out_dir: Path, width: int = BLOOM_VOCAB) -> Path:
    """Copy the tokenizer folder `source` to `out_dir` with its BPE vocabulary padded to
    `width` entries."""
    from transformers import AutoTokenizer

    from core.fileio import atomic_dir

    with atomic_dir(out_dir, overwrite=True) as scratch:
        AutoTokenizer.from_pretrained(source).save_pretrained(scratch)
        path = Path(scratch) / "tokenizer.json"
        spec = json.loads(path.read_text(encoding="utf-8"))
        vocab: dict[str, int] = spec["model"]["vocab"]
        added = spec.get("added_tokens", [])
        used = len(vocab) + sum(1 for t in added if t["content"] not in vocab)
        start = max([*vocab.values(), *(t["id"] for t in added)]) + 1
        if used > width:
            raise ValueError(f"{source}: {used} tokens already, wider than {width}")
        vocab.update({f"<unused-{i}>": i for i in range(start, start + width - used)})
        path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    assert len(tokenizer) == width, (len(tokenizer), width)
    return out_dir


def random_model(
    config: dict[str, Any], tokenizer_dir: Path, out_dir: Path, dtype: str, seed: int = 1
) -> Path:
    """A randomly initialised causal LM with `config` (a config.json dict), saved with the
    tokenizer: loaded like any pretrained checkpoint (ZeRO-3 sees ordinary weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from core.fileio import atomic_dir

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    values = dict(config)
    hf_config = AutoConfig.for_model(values.pop("model_type"), **values)
    if hf_config.vocab_size < len(tokenizer):
        wide = f"{len(tokenizer)} ids, the model has {hf_config.vocab_size}"
        raise ValueError(f"{tokenizer_dir}: {wide}")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(hf_config).to(getattr(torch, dtype))
    with atomic_dir(out_dir, overwrite=True) as scratch:
        model.save_pretrained(scratch, safe_serialization=True)
        tokenizer.save_pretrained(scratch)
    return out_dir


def build_shards(
    corpus: Path, tokenizer_dir: Path, out_dir: Path, *overrides: str, cache: Path | None = None
) -> Path:
    """FreeDict-layout corpus (train/dev/test.{de,en}) -> instruction shards."""
    from data_prep.build import build
    from data_prep.recipe import load_recipe

    recipe = load_recipe(
        "freedict", [f"corpus.path={corpus}/", f"tokenizer={tokenizer_dir}", *overrides]
    )
    build(recipe, out_dir, cache_dir=cache or out_dir.parent / "align-cache", progress=False)
    return out_dir
