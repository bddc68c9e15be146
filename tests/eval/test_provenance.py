"""Skipping finished directions: only output produced by the same inputs and settings
is reused; a cut or short hypothesis file is decoded again, never scored; each test set
is read once. Runs in-process on a few FreeDict sentences with the tiny trained model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import eval.directions
from data_prep.contract.readers import CorpusError, CorpusSpec, RawPair
from eval.config import load_eval_config
from eval.run import prepare, run, score_all

SENTENCES = 6


@pytest.fixture()
def corpus(freedict_corpus: Path, tmp_path: Path) -> Path:
    """A private copy of the first FreeDict test lines (the tests edit it)."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for lang in ("de", "en"):
        lines = (freedict_corpus / f"test.{lang}").read_text(encoding="utf-8").splitlines()
        (folder / f"test.{lang}").write_text("\n".join(lines[:12]) + "\n", encoding="utf-8")
    return folder


def evaluate(model: Path, corpus: Path, out: Path, *extra: str, decoding: bool = True) -> dict:
    overrides = [f"model={model}", f"out={out}", f"corpus.path={corpus}/",
                 f"max_sentences={SENTENCES}", "decode.batch_size=4",
                 "decode.max_new_tokens=12", *extra]  # fmt: skip
    config, grid = load_eval_config(None, overrides)
    found, test_sets = prepare(config, grid, decoding)
    result = run(config, grid, found, test_sets) if decoding else None
    return result or score_all(config, grid, found, test_sets)


def stamps(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted((out / "hyps").glob("*.txt"))}


def test_skip_only_what_the_same_inputs_produced(
    trained_model: Path, corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    evaluate(trained_model, corpus, out)
    first = stamps(out)
    assert set(first) == {"de-en.txt", "en-de.txt"}
    evaluate(trained_model, corpus, out)
    assert stamps(out) == first  # identical inputs: nothing decoded
    # A language name changes the prompts of both directions.
    evaluate(trained_model, corpus, out, "language_names.de=Deutsch")
    renamed = stamps(out)
    assert all(renamed[name] != first[name] for name in first)
    meta = (out / "hyps" / "de-en.meta.json").read_text()
    assert '"Deutsch"' in meta and "text_sha256" in meta and "test_files" in meta
    # An edited test file (a line past the cap): the file's sha256 differs, so both
    # directions (test.en is de-en's reference and en-de's source) are decoded again.
    lines = (corpus / "test.en").read_text(encoding="utf-8").splitlines()
    lines[10] = "An edited reference."
    (corpus / "test.en").write_text("\n".join(lines) + "\n", encoding="utf-8")
    evaluate(trained_model, corpus, out, "language_names.de=Deutsch")
    edited = stamps(out)
    assert all(edited[name] != renamed[name] for name in first)
    # A different sentence cap is different output.
    evaluate(trained_model, corpus, out, "language_names.de=Deutsch", "max_sentences=4")
    assert len((out / "hyps" / "de-en.txt").read_text(encoding="utf-8").splitlines()) == 4


def test_cut_or_short_hypotheses_are_decoded_again(
    trained_model: Path, corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    evaluate(trained_model, corpus, out)
    hyp = out / "hyps" / "de-en.txt"
    complete, other = hyp.read_bytes(), stamps(out)["en-de.txt"]
    hyp.write_bytes(complete.rstrip(b"\n")[:-2])  # cut mid-line, as by a full disk
    with pytest.raises(CorpusError, match="no newline"):
        evaluate(trained_model, corpus, out, decoding=False)  # scoring refuses it
    evaluate(trained_model, corpus, out)
    assert hyp.read_bytes() == complete and stamps(out)["en-de.txt"] == other
    hyp.write_bytes(b"".join(complete.splitlines(keepends=True)[:-1]))  # one line short
    with pytest.raises(CorpusError, match=f"has {SENTENCES - 1} lines"):
        evaluate(trained_model, corpus, out, decoding=False)
    evaluate(trained_model, corpus, out)
    assert hyp.read_bytes() == complete


def test_each_test_set_is_read_once(
    trained_model: Path, corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str]] = []
    real = eval.directions.read_pairs

    def counting(spec: CorpusSpec, src: str, tgt: str, split: str) -> Iterator[RawPair]:
        """The real reader, counted."""
        calls.append((src, tgt))
        return real(spec, src, tgt, split)

    monkeypatch.setattr(eval.directions, "read_pairs", counting)
    result = evaluate(trained_model, corpus, tmp_path / "eval")
    assert set(result["directions"]) == {"de-en", "en-de"}
    assert sorted(calls) == [("de", "en"), ("en", "de")]


def score_cli(corpus: Path, out: Path, *extra: str) -> int:
    """`python -m eval score` in-process (its exit status; messages go to stderr)."""
    from eval.cli import main

    return main(["score", "--grid", "freedict", f"corpus.path={corpus}/",
                 f"max_sentences={SENTENCES}", "--out", str(out), *extra])  # fmt: skip


def test_score_refuses_hypotheses_of_other_inputs(
    trained_model: Path, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    evaluate(trained_model, corpus, out)
    assert score_cli(corpus, out) == 0  # the same inputs: scored
    capsys.readouterr()
    # An edited source line inside the cap: the de-en hypotheses were decoded from the
    # old sentence (and en-de's references changed).
    lines = (corpus / "test.de").read_text(encoding="utf-8").splitlines()
    lines[1] = "Ein ganz anderer Satz."
    (corpus / "test.de").write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = (out / "scores.json").read_text()
    assert score_cli(corpus, out) == 2
    err = capsys.readouterr().err
    assert "de-en:" in err and "en-de:" in err and "is stale" in err, err
    assert "text_sha256" in err and "test_files" in err and "python -m eval run" in err
    assert (out / "scores.json").read_text() == before  # nothing rescored
    # `eval run` decodes the stale directions again; then score accepts them.
    evaluate(trained_model, corpus, out)
    assert score_cli(corpus, out) == 0


def test_score_refuses_test_hypotheses_against_the_dev_split(
    trained_model: Path, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    evaluate(trained_model, corpus, out)
    for lang in ("de", "en"):  # a dev split of the same length
        lines = (corpus / f"test.{lang}").read_text(encoding="utf-8").splitlines()
        (corpus / f"dev.{lang}").write_text("\n".join(reversed(lines)) + "\n", encoding="utf-8")
    assert score_cli(corpus, out, "split=dev") == 2
    err = capsys.readouterr().err
    assert "split (decoded from 'test', grid now 'dev')" in err, err


def test_empty_or_identical_hypotheses_are_flagged_per_direction(
    trained_model: Path, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    evaluate(trained_model, corpus, out)
    assert "warning" not in json.dumps(json.loads((out / "scores.json").read_text()))
    (out / "hyps" / "de-en.txt").write_text("\n" * SENTENCES, encoding="utf-8")
    (out / "hyps" / "en-de.txt").write_text("Das Haus.\n" * SENTENCES, encoding="utf-8")
    capsys.readouterr()
    assert score_cli(corpus, out) == 0
    err = capsys.readouterr().err
    scores = json.loads((out / "scores.json").read_text())["directions"]
    assert scores["de-en"]["warning"] == f"all {SENTENCES} hypotheses are empty"
    assert scores["en-de"]["warning"] == (
        f"all {SENTENCES} hypotheses are the same sentence: 'Das Haus.'"
    )
    assert f"warning: de-en: all {SENTENCES} hypotheses are empty" in err
    assert "warning: en-de: all" in err
    assert "- **de-en**: all" in (out / "scores.md").read_text()
