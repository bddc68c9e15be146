"""data_prep.contract.chat: prompts in a tokenizer's chat template, tokenized as the
tokenizer's own `apply_chat_template` renders them, the loss on the answer only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tokenizers.processors import TemplateProcessing
from transformers import AutoTokenizer

from core.typed_config import ConfigError
from data_prep.build import build
from data_prep.contract.chat import (
    PromptFormat,
    chat_format,
    format_problems,
    template_problems,
)
from data_prep.contract.manifest import read_manifest
from data_prep.contract.shards import open_shard
from data_prep.contract.templates import DEFAULT_TEMPLATES
from data_prep.recipe import load_recipe
from data_prep.shards import encode_batch
from tests.conftest import freedict_overrides

# Qwen's ChatML and Llama 3's header format (BOS in the template, content trimmed).
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAMA3 = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}"
    "<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)

T = DEFAULT_TEMPLATES
SAMPLES = [
    T.mt("German", "English", "Guten Morgen.", "Good morning."),
    T.align("German", "English", "Das Haus.", "The house.", "Haus", "house", True),
    T.hint("English", "German", "The house.", "Das Haus.", [("house", "Haus")]),
    T.revise("German", "English", "Das Haus.", "The mouse.", "mouse", "house"),
]


def with_template(tokenizer_dir: Path, template: str, bos: bool = False) -> Any:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.chat_template = template
    if bos:  # a tokenizer that adds BOS itself, as Llama's does
        bos_id = tokenizer.bos_token_id
        processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos_id)])
        tokenizer.backend_tokenizer.post_processor = processor
    return tokenizer


@pytest.mark.parametrize("template", [CHATML, LLAMA3], ids=["chatml", "llama3"])
def test_wrapped_text_is_the_tokenizers_own_render(tokenizer_dir: Path, template: str) -> None:
    tokenizer = with_template(tokenizer_dir, template)
    chat = chat_format(tokenizer)
    for prompt, answer in SAMPLES:
        messages = [{"role": "user", "content": prompt}]
        opened = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert chat.prompt(prompt) == opened
        messages.append({"role": "assistant", "content": answer.strip()})
        closed = tokenizer.apply_chat_template(messages, tokenize=False)
        assert chat.prompt(prompt) + chat.answer(answer) == closed.rstrip()
    assert chat.turn_end == ("<|im_end|>" if template == CHATML else "<|eot_id|>")


def test_chat_prompts_carry_one_bos_where_the_template_puts_it(tokenizer_dir: Path) -> None:
    """The template writes BOS; the tokenizer's own BOS would make it two."""
    tokenizer = with_template(tokenizer_dir, LLAMA3, bos=True)
    bos = tokenizer.bos_token_id
    plain = PromptFormat(tokenizer).prompt_ids([SAMPLES[0][0]])[0]
    assert plain[0] == bos and plain.count(bos) == 1
    chat = PromptFormat(tokenizer, chat=True).prompt_ids([SAMPLES[0][0]])[0]
    assert chat[0] == bos and chat.count(bos) == 1
    assert tokenizer.decode(chat) == chat_format(tokenizer).prompt(SAMPLES[0][0])


def test_shards_hold_the_chat_text_with_the_loss_on_the_answer_only(tokenizer_dir: Path) -> None:
    tokenizer = with_template(tokenizer_dir, CHATML)
    chat = chat_format(tokenizer)
    encoded = encode_batch(tokenizer, SAMPLES, max_len=512, chat=chat)
    ends = np.cumsum(encoded.lengths)
    for (prompt, answer), end, length, n_prompt in zip(
        SAMPLES, ends, encoded.lengths, encoded.prompt_lengths, strict=True
    ):
        ids = encoded.ids[end - length : end].tolist()
        assert tokenizer.decode(ids[:n_prompt]) == chat.prompt(prompt)
        assert ids[-1] == tokenizer.eos_token_id
        # The masked part (loss) is the answer, the turn's end and EOS: nothing of the prompt.
        assert tokenizer.decode(ids[n_prompt:-1]) == answer.strip() + "<|im_end|>"
    plain = encode_batch(tokenizer, SAMPLES, max_len=512)
    assert (plain.prompt_lengths < encoded.prompt_lengths).all()


def test_a_turn_end_that_is_eos_is_not_doubled(tokenizer_dir: Path) -> None:
    eos = AutoTokenizer.from_pretrained(tokenizer_dir).eos_token  # "</s>", as Gemma's <eos>
    template = CHATML.replace("<|im_end|>", eos)
    tokens = PromptFormat(with_template(tokenizer_dir, template), chat=True)
    row = tokens.answer_ids([" Good morning."])[0]
    assert row[-1] == tokens.eos and row.count(tokens.eos) == 1
    assert tokens.stop_ids() == {tokens.eos}


def test_decoded_answers_lose_the_turn_end(tokenizer_dir: Path) -> None:
    tokens = PromptFormat(with_template(tokenizer_dir, CHATML), chat=True)
    assert tokens.clean("Good morning.<|im_end|>junk") == "Good morning."
    assert PromptFormat(with_template(tokenizer_dir, CHATML)).clean("a<|im_end|>") == "a<|im_end|>"


def test_a_tokenizer_without_a_chat_template_is_refused(tokenizer_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    with pytest.raises(ConfigError) as err:
        chat_format(tokenizer)
    assert "has no chat template" in str(err.value) and str(tokenizer_dir) in str(err.value)


def test_a_template_that_rewrites_the_prompt_is_refused(tokenizer_dir: Path) -> None:
    rewriting = CHATML.replace("{{ m['content'] }}", "{{ m['content'] | upper }}")
    with pytest.raises(ConfigError, match="changes the prompt's text"):
        chat_format(with_template(tokenizer_dir, rewriting))


def test_eval_refuses_the_other_format(tokenizer_dir: Path) -> None:
    tokenizer = with_template(tokenizer_dir, CHATML)
    record = chat_format(tokenizer).record()
    assert format_problems(record, True, "m") == []
    assert template_problems(record, PromptFormat(tokenizer, chat=True), "m") == []
    assert "pass --chat-template" in format_problems(record, False, "m")[0]
    plain = {"chat_template": False}
    assert "leave out --chat-template" in format_problems(plain, True, "m")[0]
    other = PromptFormat(with_template(tokenizer_dir, LLAMA3), chat=True)
    assert (
        "is not the one the training data was built with"
        in template_problems(record, other, "m")[0]
    )


def test_build_wraps_every_sample_and_records_the_choice(
    freedict_corpus: Path, tokenizer_dir: Path, align_cache: Path, built: Path, tmp_path: Path
) -> None:
    saved = tmp_path / "chat-tokenizer"
    with_template(tokenizer_dir, CHATML).save_pretrained(saved)
    base = ["curriculum=MT+Align", "max_pairs=60", "dev_max_pairs=10", "workers=2"]
    plain_overrides = freedict_overrides(freedict_corpus, tokenizer_dir, *base)
    with pytest.raises(ConfigError, match="has no chat template"):  # before any aligning
        build(load_recipe("freedict", [*plain_overrides, "chat_template=true"]), tmp_path / "x")
    overrides = freedict_overrides(freedict_corpus, saved, *base, "chat_template=true")
    manifest = build(
        load_recipe("freedict", overrides), tmp_path / "out", align_cache, progress=False
    )
    chat = chat_format(AutoTokenizer.from_pretrained(saved))
    assert manifest["prompt_format"] == chat.record() and chat.record()["chat_template"]
    stage = manifest["stages"][0]
    tokens, mask = open_shard(tmp_path / "out" / stage["name"] / stage["shards"][0]["prefix"])
    tokenizer = AutoTokenizer.from_pretrained(saved)
    for k in range(len(tokens)):
        ids, loss = np.array(tokens[k]), np.array(mask[k])
        start = int(np.argmax(loss))
        assert loss[:start].sum() == 0 and loss[start:].all()
        prompt = tokenizer.decode(ids[:start].tolist())
        assert prompt.startswith("<|im_start|>user\n") and prompt.endswith(chat.after)
        assert tokenizer.decode(ids[start:-1].tolist()).endswith("<|im_end|>")
    assert read_manifest(built)["prompt_format"] == {"chat_template": False}  # the default
