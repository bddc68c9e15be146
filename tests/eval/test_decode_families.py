"""The batched greedy decoder on a tiny random model of every family: a batch of prompts
of different lengths (shared prefix, left padding, rows leaving and refilled rows merged
in) decodes exactly as each prompt alone, and as transformers' `generate`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from core.families import FAMILIES, ModelFamily, tiny_config
from data_prep.contract.templates import DEFAULT_TEMPLATES
from eval.decode import DecodeConfig, Translator, cut, generate_batch

NEW_TOKENS = 10


def random_model(family: ModelFamily, tokenizer: Any) -> torch.nn.Module:
    """A tiny model of `family` with a large init (std 0.5), so that its logits are far
    from flat: the default init's near-ties would hide wrong positions. Gemma scales its
    embeddings by sqrt(hidden); tied to the output layer they then make every step repeat
    its input token, so Gemma's test model has its own output layer."""
    torch.manual_seed(0)
    special = {f"{k}_token_id": getattr(tokenizer, f"{k}_token_id") for k in ("bos", "eos", "pad")}
    untie = {"tie_word_embeddings": False}
    values = tiny_config(family, len(tokenizer), 32, 2, 4, special, initializer_range=0.5, **untie)
    config = AutoConfig.for_model(values.pop("model_type"), **values)
    return AutoModelForCausalLM.from_config(config).eval()


def end_some_answers(model: torch.nn.Module, rows: list[list[int]], eos: int) -> None:
    """Make EOS win wherever the token most rows produce after their first would (its
    output row, scaled),
    so that answers end at different lengths, as a trained model's do, and rows leave the
    batch and are refilled."""
    config = DecodeConfig(batch_size=1, max_new_tokens=NEW_TOKENS)
    with torch.inference_mode():
        outputs = [generate_batch(model, [r], eos, eos, config)[0] for r in rows]
    first = {out[0] for out in outputs}  # never at the first step: no empty answers
    later = Counter(t for out in outputs for t in set(out[1:]) if t not in first)
    common = later.most_common(1)[0][0]
    with torch.no_grad():
        head = model.get_output_embeddings().weight
        head[eos] = 1.02 * head[common]


@pytest.fixture(scope="module")
def prompts_and_tokenizer(tokenizer_dir: Path, freedict_corpus: Path) -> tuple[list[str], Any]:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    sources = (freedict_corpus / "test.de").read_text(encoding="utf-8").splitlines()[:10]
    return [DEFAULT_TEMPLATES.mt("German", "English", s)[0] for s in sources], tokenizer


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_batched_greedy_equals_alone_and_generate(
    family: ModelFamily, prompts_and_tokenizer: tuple[list[str], Any]
) -> None:
    prompts, tokenizer = prompts_and_tokenizer
    ids = tokenizer(prompts)["input_ids"]
    assert len({len(r) for r in ids}) > 5  # different lengths: rows are padded
    model = random_model(family, tokenizer)
    end_some_answers(model, ids, tokenizer.eos_token_id)
    config = DecodeConfig(batch_size=4, max_new_tokens=NEW_TOKENS)
    batched = Translator(model, tokenizer, config).translate(prompts)
    alone = Translator(model, tokenizer, DecodeConfig(1, 1, NEW_TOKENS)).translate(prompts)
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    with torch.inference_mode():
        generated = [generate_batch(model, [r], pad, eos, config)[0] for r in ids]
    reference = [cut(tokenizer.decode(t, skip_special_tokens=True)) for t in generated]
    assert batched == reference
    assert alone == reference
    # Not a degenerate model: distinct, non-empty answers that end at different lengths.
    assert len(set(reference)) >= 8 and sum(1 for text in reference if text) >= 8
    lengths = Counter(len(t) for t in generated)
    assert len(lengths) >= 3 and lengths[NEW_TOKENS] < len(ids), lengths
