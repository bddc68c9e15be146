"""Batch plans (length grouping, ranks, resume positions) and the answer-only loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from data_prep.contract.tokenizer import load_tokenizer
from training.data import IGNORE, BatchPlan, collate, load_stages
from training.model import AnswerOnlyLM, build_tiny_bloom, load_model


@pytest.fixture(scope="module")
def stages(built: Path):
    return load_stages(built)


def test_plan_covers_each_sample_once_and_splits_ranks(stages) -> None:
    lengths = stages[0].lengths
    plan = BatchPlan(micro_batch=8, grad_accum=2, world_size=2, seed=3, group_batches=16)
    steps = plan.epoch(lengths, epoch=0)
    assert len(steps) == plan.steps_per_epoch(len(lengths)) == len(lengths) // 32
    flat = [i for step in steps for micro in step for i in micro]
    assert len(flat) == len(set(flat)) == len(steps) * 32
    rank0 = {i for s in steps for m in plan.rank_micro_batches(s, 0) for i in m}
    rank1 = {i for s in steps for m in plan.rank_micro_batches(s, 1) for i in m}
    assert not rank0 & rank1 and len(rank0) == len(rank1) == len(flat) // 2
    assert plan.epoch(lengths, 0) == steps and plan.epoch(lengths, 1) != steps


def test_length_grouping_keeps_padding_under_ten_percent(stages) -> None:
    for stage in stages:
        plan = BatchPlan(micro_batch=16, grad_accum=1, world_size=2, seed=1, group_batches=64)
        real = padded = 0
        for step in plan.epoch(stage.lengths, 0):
            for micro in step:
                width = stage.lengths[micro].max()
                real += stage.lengths[micro].sum()
                padded += width * len(micro)
        assert 1 - real / padded < 0.10, (stage.name, 1 - real / padded)


def test_collate_shifts_labels_to_answer_tokens(stages) -> None:
    samples = [stages[0][0], stages[0][1]]
    batch = collate(samples, pad_id=3)
    for row, (ids, mask) in enumerate(samples):
        n = len(ids)
        assert batch["attention_mask"][row].sum() == n
        labels = batch["labels"][row]
        expected = [int(ids[t + 1]) if mask[t + 1] else IGNORE for t in range(n - 1)]
        assert labels[: n - 1].tolist() == expected
        assert (labels[n - 1 :] == IGNORE).all()


def test_padded_batch_loss_equals_samples_one_by_one(stages, built: Path, tmp_path: Path) -> None:
    """A row shared with longer samples (right padding) scores exactly what it scores
    alone, and the answer-only head equals the full-vocabulary loss."""
    import json

    tok = load_tokenizer(
        json.loads((built / "manifest.json").read_text())["tokenizer"]["name_or_path"]
    )
    path = build_tiny_bloom(tok, tmp_path / "tiny", 32, 2, 4, seed=5)
    model = AnswerOnlyLM(load_model(str(path), False, torch.float32)).eval()
    stage = stages[0]
    order = np.argsort(stage.lengths)
    picks = [int(order[0]), int(order[len(order) // 2]), int(order[-1]), int(order[10])]
    samples = [stage[i] for i in picks]
    with torch.no_grad():
        batch = collate(samples, tok.pad_token_id)
        together, count = model(**batch)
        alone = [model(**collate([s], tok.pad_token_id)) for s in samples]
        logits = model.lm(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).logits
        full = F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), reduction="sum")
    assert count == sum(n for _, n in alone) == int(sum(m[1:].sum() for _, m in samples))
    assert torch.allclose(together, sum(loss for loss, _ in alone), rtol=1e-5)
    assert torch.allclose(together, full, rtol=1e-5)
