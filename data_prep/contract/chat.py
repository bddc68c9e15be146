"""Prompts in the tokenizer's chat template, for instruction-tuned models (off for BLOOMZ).

With `chat_template: true` in the recipe (and `--chat-template` in eval), each prompt of
data/contract/templates.py becomes the user turn and its answer the assistant turn:

    prompt text = before + prompt + after      the template with add_generation_prompt
    answer text = answer.strip() + turn_end    what the template writes after an answer

`before`, `after` and `turn_end` come from rendering the template once around marker
strings, so a sample costs two string joins, not a Jinja render; the split is checked
against a real render. Chat prompts are tokenized without the tokenizer's own special
tokens (the template writes BOS where the model wants one). Data prep, `eval align` and
`eval run` all tokenize through `PromptFormat`, so eval sees the tokens training saw;
the build's manifest and each export's `prompt_format.json` record the choice and a
hash of the template, and eval refuses a model trained the other way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.typed_config import ConfigError

# Written by training beside each export: how its training prompts were formatted.
PROMPT_FORMAT_NAME = "prompt_format.json"

_USER = "\u2063ALIGNINSTRUCT-USER\u2063"
_ANSWER = "\u2063ALIGNINSTRUCT-ANSWER\u2063"
# A prompt with what real ones hold (newlines, quotes, a colon at the end) to check the split.
_PROBE = 'Translate from German to English.\nGerman: "Guten Tag", sagte sie.\nEnglish:'


@dataclass(frozen=True)
class ChatFormat:
    """A one-turn chat around a prompt, split where the prompt and the answer go."""

    before: str
    after: str
    turn_end: str
    template_sha256: str

    def prompt(self, text: str) -> str:
        return f"{self.before}{text}{self.after}"

    def answer(self, text: str) -> str:
        return f"{text.strip()}{self.turn_end}"

    def record(self) -> dict[str, Any]:
        return {"chat_template": True, "template_sha256": self.template_sha256,
                "turn_end": self.turn_end}  # fmt: skip


def _render(tokenizer: Any, messages: list[dict[str, str]], generation: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)


def chat_format(tokenizer: Any, key: str = "chat_template") -> ChatFormat:
    """The tokenizer's chat template as a ChatFormat; a ConfigError (under `key`) when it
    has none or the template rewrites the prompt (the split would then be wrong)."""
    name = getattr(tokenizer, "name_or_path", "the tokenizer")
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        raise ConfigError(key, [
            f"{name} has no chat template (tokenizer_config.json 'chat_template'); "
            "use an instruction-tuned model's tokenizer, or chat_template: false"
        ])  # fmt: skip
    user = [{"role": "user", "content": _USER}]
    try:
        opened = _render(tokenizer, user, generation=True)
        closed = _render(tokenizer, [*user, {"role": "assistant", "content": _ANSWER}], False)
    except Exception as err:  # jinja2's errors (raise_exception in templates) vary
        problem = f"{name}: its chat template fails on one user turn: {err}"
        raise ConfigError(key, [problem]) from None
    before, marker, after = opened.partition(_USER)
    reply = closed.partition(_ANSWER)
    problems = []
    if not marker or _USER in after:
        problems.append("the user's text does not appear exactly once in the rendered turn")
    if not reply[1] or not closed.startswith(opened):
        problems.append("an answered turn does not begin with the generation prompt")
    elif _render(tokenizer, [{"role": "user", "content": _PROBE}], True) != before + _PROBE + after:
        problems.append("the template changes the prompt's text (a prompt must pass unchanged)")
    if problems:
        raise ConfigError(
            key, [f"{name}: {p}; its chat template cannot wrap prompts" for p in problems]
        )
    after += reply[0][len(opened) :]  # what the template writes before the answer itself
    digest = hashlib.sha256(template.encode()).hexdigest()[:16]
    return ChatFormat(before, after, reply[2].rstrip(), digest)


class PromptFormat:
    """Prompt and answer text to token ids, as training samples are built: plain (the
    prompt with the tokenizer's special tokens, the answer as it is, then EOS) or in the
    chat template (see the module doc)."""

    def __init__(self, tokenizer: Any, chat: bool | ChatFormat = False) -> None:
        self.tokenizer = tokenizer
        self.chat = chat_format(tokenizer) if chat is True else chat or None
        self.eos = tokenizer.eos_token_id

    def prompt_ids(self, prompts: Sequence[str]) -> list[list[int]]:
        texts = [self.chat.prompt(p) for p in prompts] if self.chat else list(prompts)
        return self._ids(texts, special=self.chat is None)

    def answer_ids(self, answers: Sequence[str]) -> list[list[int]]:
        """Each answer's tokens and its end: EOS (after the turn end, unless that is EOS)."""
        texts = [self.chat.answer(a) for a in answers] if self.chat else list(answers)
        rows = self._ids(texts, special=False)
        return [row if row[-1:] == [self.eos] else [*row, self.eos] for row in rows]

    def stop_ids(self) -> set[int]:
        """Tokens that end an answer: EOS, and the turn end when it is one token."""
        stops = {self.eos}
        if self.chat and self.chat.turn_end:
            ids = self._ids([self.chat.turn_end], special=False)[0]
            stops.update(ids if len(ids) == 1 else ())
        return stops

    def clean(self, text: str) -> str:
        """A decoded answer without the turn end (when it is not a special token)."""
        if self.chat and self.chat.turn_end:
            text = text.split(self.chat.turn_end, 1)[0]
        return text

    def record(self) -> dict[str, Any]:
        return self.chat.record() if self.chat else {"chat_template": False}

    def _ids(self, texts: list[str], special: bool) -> list[list[int]]:
        # Only the ids: building attention masks too costs about a third of the call.
        found = self.tokenizer(
            texts, add_special_tokens=special, return_attention_mask=False,
            return_token_type_ids=False,
        )  # fmt: skip
        return found["input_ids"]


def format_problems(recorded: dict[str, Any] | None, chat: bool, where: str) -> list[str]:
    """Whether eval's prompt format (`chat`) is the one a model was trained on, as its
    build recorded it (`recorded`, None when unknown)."""
    trained = bool(recorded and recorded.get("chat_template"))
    if recorded is None or trained == chat:
        return []
    how = "in its tokenizer's chat template" if trained else "as plain text"
    flag = "pass --chat-template" if trained else "leave out --chat-template"
    return [f"{where}: the model was trained on prompts {how}; {flag}"]


def template_problems(
    recorded: dict[str, Any] | None, tokens: PromptFormat, where: str
) -> list[str]:
    """Whether the chat template eval wraps prompts in is the one the build recorded."""
    if recorded is None or tokens.chat is None:
        return []
    digest, built = tokens.chat.template_sha256, recorded.get("template_sha256")
    if digest == built:
        return []
    return [f"{where}: the tokenizer's chat template ({digest}) is not the one the "
            f"training data was built with ({built})"]  # fmt: skip
