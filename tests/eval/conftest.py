"""A tiny BLOOM trained briefly (plain PyTorch, one process) on FreeDict MT samples, so
that its greedy outputs end at EOS at varying lengths, as a real model's do; and a tiny
COMET checkpoint built offline."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.support.quick_train import quick_tiny_model


@pytest.fixture(scope="session")
def trained_model(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return quick_tiny_model(built, tmp_path_factory.mktemp("eval-model") / "model")


@pytest.fixture(scope="session")
def tiny_ckpt(freedict_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny COMET checkpoint built offline (tests/support/tiny_comet.py)."""
    from tests.support.tiny_comet import build_tiny_comet

    texts = []
    for name in ("train.de", "train.en"):
        texts += (freedict_corpus / name).read_text(encoding="utf-8").splitlines()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return build_tiny_comet(tmp_path_factory.mktemp("comet") / "tiny", texts, seed=1)
    finally:
        torch.set_num_threads(threads)
