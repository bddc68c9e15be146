"""The dev build on the real FreeDict data: dev/ MTInstruct shards and dev/align.jsonl."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np

from data_prep.align_quality import load_lexicon
from data_prep.build import build
from data_prep.contract.manifest import read_manifest, verify_files
from data_prep.contract.shards import open_shard
from data_prep.contract.tokenizer import load_tokenizer
from data_prep.recipe import load_recipe
from tests.conftest import freedict_overrides

NAMES = {"German": "de", "English": "en"}
MT_PROMPT = re.compile(r"^Translate from (\w+) to (\w+)\.\n\1: (.*)\n\2:$", re.S)
ASSERTION = re.compile(r'Assertion: "(.+)" can be semantically aligned with "(.+)"\.$')


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _pairs(prefix: Path) -> list[tuple[str, str]]:
    return list(zip(_lines(Path(f"{prefix}de")), _lines(Path(f"{prefix}en")), strict=True))


def _dev_mt_samples(built: Path, tokenizer_dir: Path) -> list[tuple[str, str, str, str]]:
    """(src, tgt, source sentence, answer) of every dev shard sample."""
    tokenizer = load_tokenizer(str(tokenizer_dir))
    entry = read_manifest(built)["dev"]
    out = []
    for shard in entry["shards"]:
        tokens, mask = open_shard(built / "dev" / shard["prefix"])
        for k in range(len(tokens)):
            ids, loss = np.array(tokens[k]), np.array(mask[k])
            start = int(np.argmax(loss))
            assert ids[-1] == tokenizer.eos_token_id and loss[start:].all()
            match = MT_PROMPT.match(tokenizer.decode(ids[:start].tolist()))
            assert match, tokenizer.decode(ids[:start].tolist())
            l1, l2, source = match.groups()
            answer = tokenizer.decode(ids[start:-1].tolist())
            out.append((NAMES[l1], NAMES[l2], source, answer.removeprefix(" ")))
    return out


def test_dev_shards_hold_the_dev_split_both_ways(
    built: Path, freedict_corpus: Path, tokenizer_dir: Path
) -> None:
    manifest = read_manifest(built)
    entry = manifest["dev"]
    assert entry["name"] == "dev" and entry["kinds"] == ["mt"]
    assert verify_files(built, manifest) == []
    dev = {lang: _lines(freedict_corpus / f"dev.{lang}") for lang in ("de", "en")}
    translation = {
        "de": dict(zip(dev["de"], dev["en"], strict=True)),
        "en": dict(zip(dev["en"], dev["de"], strict=True)),
    }
    samples = _dev_mt_samples(built, tokenizer_dir)
    assert len(samples) == entry["samples"]
    directions = Counter(f"{src}-{tgt}" for src, tgt, _, _ in samples)
    kept = entry["by_direction"]["mt:de-en"]
    assert directions == {"de-en": kept, "en-de": kept} and 450 < kept <= 500
    for src, _, source, answer in samples:
        assert translation[src][source] == answer  # a dev sentence, its dev translation
    cleaned = _pairs(built / "dev/corpus/de-en.")
    de_en = [(x, y) for src, _, x, y in samples if src == "de"]
    en_de = [(y, x) for src, _, x, y in samples if src == "en"]
    assert sorted(de_en) == sorted(en_de) == sorted(cleaned)
    # FreeDict repeats a few sentences across splits; the dev samples are not the train ones
    train_pairs = set(_pairs(freedict_corpus / "train."))
    assert sum(pair in train_pairs for pair in de_en) < 0.05 * len(de_en)


def _align_rows(built: Path) -> list[dict[str, str]]:
    entry = read_manifest(built)["dev"]
    assert entry["align_samples"] == "dev/align.jsonl"
    path = built / entry["align_samples"]
    return [json.loads(line) for line in _lines(path)]


def test_dev_align_samples_format_balance_and_source(built: Path, freedict_corpus: Path) -> None:
    rows = _align_rows(built)
    entry = read_manifest(built)["dev"]
    assert len(rows) == entry["align"]["samples"] > 300
    assert all(set(row) == {"src", "tgt", "prompt", "answer"} for row in rows)
    answers = Counter(row["answer"] for row in rows)
    assert set(answers) == {"True", "False"}
    assert 0.4 < answers["True"] / len(rows) < 0.6
    directions = Counter(f"{row['src']}-{row['tgt']}" for row in rows)
    assert set(directions) == {"de-en", "en-de"} and min(directions.values()) > 0.3 * len(rows)
    dev = {lang: set(_lines(freedict_corpus / f"dev.{lang}")) for lang in ("de", "en")}
    for row in rows:
        names = {v: k for k, v in NAMES.items()}
        l1, l2 = names[row["src"]], names[row["tgt"]]
        x = re.search(rf"\n{l1}: (.*)\n{l2}: ", row["prompt"]).group(1)
        y = re.search(rf"\n{l2}: (.*)\nAssertion", row["prompt"]).group(1)
        assert x in dev[row["src"]] and y in dev[row["tgt"]]  # L1 is `src`, from dev files
        xw, yw = ASSERTION.search(row["prompt"]).groups()
        assert xw in x and yw in y


def test_dev_align_true_assertions_agree_with_the_lexicon_more(
    built: Path, freedict_corpus: Path
) -> None:
    """Positives come from the aligner's links, negatives from unlinked words: a German-
    English lexicon confirms far more of the True assertions than of the False ones."""
    lexicon = load_lexicon(freedict_corpus / "lexicon.tsv")
    confirmed: Counter[str] = Counter()
    judged: Counter[str] = Counter()
    for row in _align_rows(built):
        xw, yw = ASSERTION.search(row["prompt"]).groups()
        de, en = (xw, yw) if row["src"] == "de" else (yw, xw)
        if de.lower() in lexicon:
            judged[row["answer"]] += 1
            confirmed[row["answer"]] += en.lower() in lexicon[de.lower()]
    assert min(judged.values()) > 50
    true_rate = confirmed["True"] / judged["True"]
    false_rate = confirmed["False"] / judged["False"]
    assert true_rate > 0.25 and true_rate > 4 * false_rate, (true_rate, false_rate)


def test_no_dev_split_no_dev_entry_and_mt_only_no_align(
    freedict_corpus: Path, tokenizer_dir: Path, align_cache: Path, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for lang in ("de", "en"):
        shutil.copy(freedict_corpus / f"train.{lang}", corpus / f"train.{lang}")
    overrides = freedict_overrides(corpus, tokenizer_dir, "curriculum=MT", "max_pairs=300")
    manifest = build(
        load_recipe("freedict", overrides), tmp_path / "a", align_cache, progress=False
    )
    assert "dev" not in manifest and not (tmp_path / "a" / "dev").exists()

    overrides = freedict_overrides(
        freedict_corpus, tokenizer_dir, "curriculum=MT", "max_pairs=300", "dev_max_pairs=40"
    )
    manifest = build(
        load_recipe("freedict", overrides), tmp_path / "b", align_cache, progress=False
    )
    entry = manifest["dev"]
    assert entry["by_direction"] == {"mt:de-en": 40, "mt:en-de": 40}
    assert "align_samples" not in entry and not (tmp_path / "b" / "dev" / "align.jsonl").exists()
    assert set(entry["files"]) == {"dev/corpus/de-en.de", "dev/corpus/de-en.en"}
