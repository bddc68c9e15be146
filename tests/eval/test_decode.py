"""The decoder against transformers' generate: same greedy outputs, restored order."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from data_prep.contract.chat import PromptFormat
from data_prep.contract.templates import DEFAULT_TEMPLATES
from eval.decode import (
    DecodeConfig,
    Translator,
    common_prefix,
    cut,
    generate_batch,
    new_token_limit,
)

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


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


def test_new_token_budget_follows_the_source_length() -> None:
    config = DecodeConfig(max_new_tokens=100, length_ratio=2.5, length_slack=4)
    assert [new_token_limit(n, config) for n in (0, 3, 10, 40, 1000)] == [4, 12, 29, 100, 100]
    assert new_token_limit(5, DecodeConfig(max_new_tokens=7, length_ratio=None)) == 7


def test_each_sentence_stops_at_its_budget_and_cuts_are_reported(setup) -> None:
    model, tokenizer, prompts = setup
    chosen = prompts[:24]
    limits = [2, 40, 5] * 8
    config = DecodeConfig(batch_size=8, max_new_tokens=40)
    translator = Translator(model, tokenizer, config)
    ours = translator.translate(chosen, limits=limits)
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    stops = translator.stops
    with torch.inference_mode():
        alone = [
            generate_batch(model, [row], pad, eos, config, limit)[0]
            for row, limit in zip(tokenizer(chosen)["input_ids"], limits, strict=True)
        ]
    assert ours == [cut(tokenizer.decode(t, skip_special_tokens=True)) for t in alone]
    expected_hits = [
        len(t) >= n and not stops.intersection(t[:n]) for t, n in zip(alone, limits, strict=True)
    ]
    assert translator.hit_limit == expected_hits
    assert all(expected_hits[0::3]) and not all(expected_hits[1::3])  # 2 tokens cut them all
    beams = Translator(model, tokenizer, DecodeConfig(batch_size=8, num_beams=2, max_new_tokens=40))
    beams.translate(chosen[:6], limits=limits[:6])
    assert beams.hit_limit[0] and beams.hit_limit[3]
    assert Translator(model, tokenizer, config).limits(["a b c"]) == [
        new_token_limit(len(tokenizer("a b c", add_special_tokens=False)["input_ids"]), config)
    ]


def test_chat_prompts_decode_as_generate_does_on_the_wrapped_prompt(setup) -> None:
    """The translator tokenizes through PromptFormat: in chat mode its input is the
    tokenizer's chat template around the prompt, and its outputs lose the turn's end."""
    model, tokenizer, prompts = setup
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.chat_template = CHATML
    tokens = PromptFormat(tokenizer, chat=True)
    config = DecodeConfig(batch_size=8, max_new_tokens=30)
    ours = Translator(model, tokenizer, config, tokens).translate(prompts[:16])
    ids = tokens.prompt_ids(prompts[:16])
    assert tokenizer.decode(ids[0]) == tokenizer.apply_chat_template(
        [{"role": "user", "content": prompts[0]}], tokenize=False, add_generation_prompt=True
    )
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    with torch.inference_mode():
        alone = [generate_batch(model, [row], pad, eos, config)[0] for row in ids]
    texts = [tokens.clean(tokenizer.decode(t, skip_special_tokens=True)) for t in alone]
    assert ours == [cut(text) for text in texts]
    assert ours != Translator(model, tokenizer, config).translate(prompts[:16])
