"""The decoder against transformers' generate: same greedy outputs, restored order."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from data_prep.contract.templates import DEFAULT_TEMPLATES
from eval.decode import DecodeConfig, Translator, common_prefix, cut, generate_batch


@pytest.fixture(scope="module")
def setup(trained_model: Path, freedict_corpus: Path):
    model = AutoModelForCausalLM.from_pretrained(trained_model).eval()
    tokenizer = AutoTokenizer.from_pretrained(trained_model)
    sources = (freedict_corpus / "test.de").read_text(encoding="utf-8").splitlines()[:80]
    prompts = [DEFAULT_TEMPLATES.mt("German", "English", s)[0] for s in sources]
    return model, tokenizer, prompts


def test_cut_and_common_prefix() -> None:
    assert cut(" Good morning.\nGerman: x") == "Good morning."
    assert common_prefix([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert common_prefix([[1, 2], [1, 2]]) == 1  # the last token is always recomputed


def test_greedy_matches_generate_one_by_one_and_batched(setup) -> None:
    model, tokenizer, prompts = setup
    config = DecodeConfig(batch_size=16, max_new_tokens=40)
    ours = Translator(model, tokenizer, config).translate(prompts)
    ids = tokenizer(prompts)["input_ids"]
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    with torch.inference_mode():
        alone = [generate_batch(model, [row], pad, eos, config)[0] for row in ids]
        batched = Translator(model, tokenizer, DecodeConfig(16, 1, 40)).generate(ids, None)
    decode = [cut(tokenizer.decode(t, skip_special_tokens=True)) for t in alone]
    assert ours == decode
    assert [cut(tokenizer.decode(t, skip_special_tokens=True)) for t in batched] == decode
    # The model ends sentences at different lengths, so refilling was exercised.
    lengths = {len(t) for t in alone}
    assert len(lengths) > 3 and min(lengths) < 40
    assert sum(1 for text in ours if text) > 60


def test_beam_search_returns_one_output_per_prompt_in_order(setup) -> None:
    model, tokenizer, prompts = setup
    beams = Translator(model, tokenizer, DecodeConfig(batch_size=8, num_beams=3, max_new_tokens=20))
    forward = beams.translate(prompts[:12])
    backward = beams.translate(prompts[:12][::-1])
    assert len(forward) == 12 and forward == backward[::-1]
    assert all("\n" not in text for text in forward)
