"""COMET scoring with a tiny checkpoint built locally from the FreeDict corpus (no hub)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from eval import comet_score as cs
from eval.comet_score import comet_score, load_comet
from tests.support.tiny_comet import build_tiny_comet

N_DEV = 120


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """A tiny model gains nothing from threads, and OpenMP spinning on a busy 2-core
    machine can slow it down a hundredfold."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dev(freedict_corpus: Path) -> tuple[list[str], list[str]]:
    src, ref = lines(freedict_corpus / "dev.de"), lines(freedict_corpus / "dev.en")
    assert len(src) == len(ref) >= N_DEV
    return src[:N_DEV], ref[:N_DEV]


def test_checkpoint_layout(tiny_ckpt: Path) -> None:
    root = tiny_ckpt.parents[1]
    assert tiny_ckpt == root / "checkpoints" / "model.ckpt"
    assert (root / "hparams.yaml").is_file()
    assert (root / "encoder" / "tokenizer.json").is_file()


def test_scores_are_finite_one_per_segment(tiny_ckpt: Path, dev) -> None:
    src, ref = dev
    hyp = [" ".join(r.split()[::2]) for r in ref]
    system, segments = comet_score(tiny_ckpt, src, hyp, ref, batch_size=16)
    assert len(segments) == len(src)
    assert all(isinstance(s, float) and math.isfinite(s) for s in segments)
    assert isinstance(system, float) and math.isfinite(system)
    assert system == pytest.approx(sum(segments) / len(segments))


def test_reference_copy_beats_partial_beats_unrelated(tiny_ckpt: Path, dev) -> None:
    src, ref = dev
    unrelated = ref[7:] + ref[:7]
    partial = [" ".join(r.split()[: max(1, len(r.split()) // 2)]) for r in ref]
    same_sys, same = comet_score(tiny_ckpt, src, ref, ref)
    part_sys, _ = comet_score(tiny_ckpt, src, partial, ref)
    other_sys, other = comet_score(tiny_ckpt, src, unrelated, ref)
    assert same_sys > part_sys > other_sys
    wins = sum(a > b for a, b in zip(same, other, strict=True))
    assert wins >= 0.9 * len(src)


def test_scoring_is_deterministic_and_order_preserving(tiny_ckpt: Path, dev) -> None:
    src, ref = dev
    hyp = ref[1:] + ref[:1]
    first = comet_score(tiny_ckpt, src, hyp, ref, batch_size=8)
    assert comet_score(tiny_ckpt, src, hyp, ref, batch_size=8) == first
    # A fresh load of the same checkpoint gives the same numbers.
    cs._MODELS.pop(str(tiny_ckpt.resolve()))
    again = comet_score(tiny_ckpt, src, hyp, ref, batch_size=8)
    assert again[1] == pytest.approx(first[1], abs=1e-6)
    # Segment scores come back in input order (comet sorts by length internally).
    _, reversed_scores = comet_score(tiny_ckpt, src[::-1], hyp[::-1], ref[::-1], batch_size=8)
    assert reversed_scores[::-1] == pytest.approx(first[1], abs=1e-5)


def test_model_is_loaded_once_per_path(tiny_ckpt: Path) -> None:
    assert load_comet(tiny_ckpt) is load_comet(str(tiny_ckpt))


def test_length_mismatch_raises(tiny_ckpt: Path, dev) -> None:
    src, ref = dev
    with pytest.raises(ValueError, match="3 sources, 2 hypotheses, 3 references"):
        comet_score(tiny_ckpt, src[:3], ref[:2], ref[:3])


def test_missing_checkpoint_raises(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "checkpoints" / "model.ckpt"
    with pytest.raises(ValueError, match=re.escape(str(missing))):
        comet_score(missing, ["a"], ["b"], ["c"])


def test_build_is_deterministic_for_a_seed(freedict_corpus: Path, tmp_path: Path, dev) -> None:
    texts = lines(freedict_corpus / "train.en")[:400] + lines(freedict_corpus / "train.de")[:400]
    src, ref = dev
    hyp = ref[3:] + ref[:3]
    runs = [
        build_tiny_comet(tmp_path / name, texts, seed=7, max_steps=10, vocab_size=300)
        for name in ("a", "b")
    ]
    assert (runs[0].parents[1] / "encoder" / "tokenizer.json").read_bytes() == (
        runs[1].parents[1] / "encoder" / "tokenizer.json"
    ).read_bytes()
    scores = [comet_score(ckpt, src[:30], hyp[:30], ref[:30])[1] for ckpt in runs]
    assert scores[0] == scores[1]
