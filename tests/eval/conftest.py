"""A tiny BLOOM trained briefly (plain PyTorch, one process) on FreeDict MT samples, so
that its greedy outputs end at EOS at varying lengths, as a real model's do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from data_prep.shards import load_tokenizer
from training.data import BatchPlan, collate, load_stages
from training.model import AnswerOnlyLM, build_tiny_bloom, load_model


@pytest.fixture(scope="session")
def trained_model(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    manifest = json.loads((built / "manifest.json").read_text())
    tokenizer = load_tokenizer(manifest["tokenizer"]["name_or_path"])
    folder = tmp_path_factory.mktemp("eval-model") / "model"
    build_tiny_bloom(tokenizer, folder, hidden=64, layers=2, heads=4, seed=3)
    model = AnswerOnlyLM(load_model(str(folder), False, torch.float32))
    stage = load_stages(built)[-1]  # MT only
    plan = BatchPlan(micro_batch=32, grad_accum=1, world_size=1, seed=3, group_batches=8)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(3)
    for step in plan.epoch(stage.lengths, 0)[:250]:
        batch = collate([stage[i] for i in step[0]], tokenizer.pad_token_id)
        loss, count = model(**batch)
        (loss / count).backward()
        optimizer.step()
        optimizer.zero_grad()
    model.lm.save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture(scope="session")
def tiny_ckpt(freedict_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny COMET checkpoint built offline (eval/tiny_comet.py)."""
    from eval.tiny_comet import build_tiny_comet

    texts = []
    for name in ("train.de", "train.en"):
        texts += (freedict_corpus / name).read_text(encoding="utf-8").splitlines()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return build_tiny_comet(tmp_path_factory.mktemp("comet") / "tiny", texts, seed=1)
    finally:
        torch.set_num_threads(threads)
