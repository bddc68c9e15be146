"""data_prep.contract.templates: the exact prompt and answer strings of every instruction type."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from data_prep.contract.templates import DEFAULT_TEMPLATES, Templates, load_templates

T = DEFAULT_TEMPLATES


def test_mt_prompt_and_answer() -> None:
    assert T.mt("German", "English", "Hallo Welt.", "Hello world.") == (
        "Translate from German to English.\nGerman: Hallo Welt.\nEnglish:",
        " Hello world.",
    )


def test_mt_prompt_alone_for_eval() -> None:
    prompt, answer = T.mt("Welsh", "English", "Bore da.")
    assert prompt == "Translate from Welsh to English.\nWelsh: Bore da.\nEnglish:"
    assert answer == " "


@pytest.mark.parametrize(("label", "answer"), [(True, " True"), (False, " False")])
def test_align_prompt_and_answers(label: bool, answer: str) -> None:
    assert T.align("German", "English", "Hallo Welt.", "Hello world.", "Welt", "world", label) == (
        "Given the following parallel sentence between German and English, judge whether "
        "the assertion is True or False.\nGerman: Hallo Welt.\nEnglish: Hello world.\n"
        'Assertion: "Welt" can be semantically aligned with "world".',
        answer,
    )


def test_hint_with_two_pairs() -> None:
    pairs = [("Hallo", "Hello"), ("Welt", "world")]
    assert T.hint("German", "English", "Hallo Welt.", "Hello world.", pairs) == (
        "Use the following alignment hints and translate from German to English.\n"
        "Alignments between German and English:\n"
        '("Hallo", "Hello"), ("Welt", "world")\n'
        "German: Hallo Welt.\nEnglish:",
        " Hello world.",
    )


def test_hint_with_one_pair_has_no_separator() -> None:
    prompt, _ = T.hint("German", "English", "Hallo Welt.", "Hello world.", [("Welt", "world")])
    assert '\n("Welt", "world")\n' in prompt
    assert ", (" not in prompt


def test_revise_prompt_and_answer() -> None:
    assert T.revise("German", "English", "Hallo Welt.", "Hello house.", "house", "world") == (
        "Given the following translation of English from German, output the incorrectly "
        "translated word and correct it.\nGerman: Hallo Welt.\nEnglish: Hello house.",
        ' The incorrectly translated word is "house". It should be "world".',
    )


def test_braces_in_text_are_left_alone() -> None:
    x, y = "Setze {x} und {} ein {0}.", "Insert {x} and {} {y}."
    assert T.mt("German", "English", x, y) == (
        f"Translate from German to English.\nGerman: {x}\nEnglish:",
        f" {y}",
    )
    prompt, _ = T.align("German", "English", x, y, "{x}", "{y}", True)
    assert prompt.endswith(
        f'German: {x}\nEnglish: {y}\nAssertion: "{{x}}" can be semantically aligned with "{{y}}".'
    )
    prompt, answer = T.hint("German", "English", x, y, [("{}", "{0}"), ("{l1}", "{hints}")])
    assert '\n("{}", "{0}"), ("{l1}", "{hints}")\n' in prompt
    assert prompt.endswith(f"German: {x}\nEnglish:")
    assert answer == f" {y}"
    prompt, answer = T.revise("German", "English", x, "{y_revised}", "{wrong}", "{right}")
    assert prompt.endswith(f"German: {x}\nEnglish: {{y_revised}}")
    assert answer == ' The incorrectly translated word is "{wrong}". It should be "{right}".'


def test_version_is_a_stable_hash() -> None:
    assert re.fullmatch(r"tpl-[0-9a-f]{12}", T.version)
    assert Templates().version == T.version
    assert Templates(align_true=" Yes").version != T.version


def test_load_templates_none_is_the_default() -> None:
    assert load_templates(None) is DEFAULT_TEMPLATES


def test_load_templates_override(tmp_path: Path) -> None:
    path = tmp_path / "templates.yaml"
    path.write_text(
        'mt_prompt: "{l1} to {l2}: {x}\\n=>"\nmt_answer: " {y} </s>"\n', encoding="utf-8"
    )
    loaded = load_templates(path)
    assert loaded.version != T.version
    assert loaded.mt("German", "English", "Hallo.", "Hello.") == (
        "German to English: Hallo.\n=>",
        " Hello. </s>",
    )
    # Fields not in the file keep their defaults.
    assert loaded.align_prompt == T.align_prompt
    assert loaded.revise("German", "English", "a", "b", "b", "c") == T.revise(
        "German", "English", "a", "b", "b", "c"
    )


def test_load_templates_empty_file_is_the_default(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert load_templates(path) == T
    assert load_templates(path).version == T.version


def test_load_templates_unknown_field(tmp_path: Path) -> None:
    path = tmp_path / "templates.yaml"
    path.write_text('mt_prompt: "{x}"\nmt_promt: "{x}"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"mt_promt: unknown template field") as err:
        load_templates(path)
    assert str(path) in str(err.value)


def test_load_templates_non_string_field(tmp_path: Path) -> None:
    path = tmp_path / "templates.yaml"
    path.write_text("align_true: true\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"align_true: must be a string"):
        load_templates(path)


def test_load_templates_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "templates.yaml"
    path.write_text("- mt_prompt\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected a mapping of template fields, got list"):
        load_templates(path)
