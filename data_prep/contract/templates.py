"""The prompt templates of every instruction type: one module, used by data prep and eval.

Defaults follow the paper (Mao & Yu, 2024; docs/method.md). Placeholders: {l1} {l2} language names,
{x} source sentence, {y} target sentence, {xw} {yw} the two words of an alignment
assertion, {hints} the formatted hint list, {y_revised} the target with one wrong
word, {wrong} {right} that word and its correction. Answers start with a space so
that they tokenize as they would follow the prompt in running text. A YAML file with
any subset of the fields overrides them; the template version is a hash of all
fields, so shards and eval can tell when prompts differ.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import yaml

from core.typed_config import ConfigError


@dataclass(frozen=True)
class Templates:
    mt_prompt: str = "Translate from {l1} to {l2}.\n{l1}: {x}\n{l2}:"
    mt_answer: str = " {y}"
    align_prompt: str = (
        "Given the following parallel sentence between {l1} and {l2}, judge whether the "
        'assertion is True or False.\n{l1}: {x}\n{l2}: {y}\nAssertion: "{xw}" can be '
        'semantically aligned with "{yw}".'
    )
    align_true: str = " True"
    align_false: str = " False"
    hint_prompt: str = (
        "Use the following alignment hints and translate from {l1} to {l2}.\n"
        "Alignments between {l1} and {l2}:\n{hints}\n{l1}: {x}\n{l2}:"
    )
    hint_pair: str = '("{xw}", "{yw}")'
    hint_separator: str = ", "
    hint_answer: str = " {y}"
    revise_prompt: str = (
        "Given the following translation of {l2} from {l1}, output the incorrectly "
        "translated word and correct it.\n{l1}: {x}\n{l2}: {y_revised}"
    )
    revise_answer: str = ' The incorrectly translated word is "{wrong}". It should be "{right}".'

    @property
    def version(self) -> str:
        """A stable hash of every template string."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return "tpl-" + hashlib.sha256(blob).hexdigest()[:12]

    def mt(self, l1: str, l2: str, x: str, y: str = "") -> tuple[str, str]:
        """(prompt, answer) of an MTInstruct sample; eval uses the prompt alone."""
        return self.mt_prompt.format(l1=l1, l2=l2, x=x), self.mt_answer.format(y=y)

    def align(
        self, l1: str, l2: str, x: str, y: str, xw: str, yw: str, label: bool
    ) -> tuple[str, str]:
        prompt = self.align_prompt.format(l1=l1, l2=l2, x=x, y=y, xw=xw, yw=yw)
        return prompt, self.align_true if label else self.align_false

    def hint(
        self, l1: str, l2: str, x: str, y: str, pairs: list[tuple[str, str]]
    ) -> tuple[str, str]:
        hints = self.hint_separator.join(self.hint_pair.format(xw=a, yw=b) for a, b in pairs)
        prompt = self.hint_prompt.format(l1=l1, l2=l2, x=x, hints=hints)
        return prompt, self.hint_answer.format(y=y)

    def revise(
        self, l1: str, l2: str, x: str, y_revised: str, wrong: str, right: str
    ) -> tuple[str, str]:
        prompt = self.revise_prompt.format(l1=l1, l2=l2, x=x, y_revised=y_revised)
        return prompt, self.revise_answer.format(wrong=wrong, right=right)


DEFAULT_TEMPLATES = Templates()


def load_templates(path: str | Path | None) -> Templates:
    """Defaults, with the fields of a YAML file (if given) overriding them."""
    if path is None:
        return DEFAULT_TEMPLATES
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(str(path), [f"cannot read templates: {err}"]) from None
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError(str(path), [f"expected a mapping of template fields, got {kind}"])
    known = sorted(f.name for f in fields(Templates))
    problems = [f"{k}: unknown template field (known: {known})" for k in data if k not in known]
    problems += [
        f"{k}: must be a string" for k, v in data.items() if k in known and not isinstance(v, str)
    ]
    if problems:
        raise ConfigError(str(path), problems)
    return replace(DEFAULT_TEMPLATES, **data)
