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


def test_row_plan_is_the_same_steps_on_any_world_size() -> None:
    """A global batch of 16 rows: 1 rank x 4 accumulation x 4 rows, 2 x 2 x 4, 4 x 1 x 4
    train the same rows in the same steps."""
    lengths = np.random.default_rng(0).integers(5, 200, size=160)
    plans = [BatchPlan(4, 4 // world, world, seed=2, group_batches=3) for world in (1, 2, 4)]
    rows = [[sorted(i for m in step for i in m) for step in p.epoch(lengths, 0)] for p in plans]
    assert rows[0] == rows[1] == rows[2] and len(rows[0]) == 10


def test_token_budget_packs_short_rows_and_spreads_long_ones() -> None:
    """Hand-made lengths: 8 rows of 10 tokens and 8 of 100, global batch 8, 2 ranks,
    at most 4 rows per micro-batch, 200 tokens per micro-batch, one sorted window."""
    lengths = np.array([10] * 8 + [100] * 8)
    plan = BatchPlan(4, 1, 2, seed=0, group_batches=2, max_tokens=200)
    steps = plan.epoch(lengths, 0)
    assert len(steps) == 2
    by_width = {int(lengths[step[0]].max()): step for step in steps}
    # Short rows: one micro-batch of 4 rows per rank (40 tokens each).
    assert [len(m) for m in by_width[10]] == [4, 4]
    # Long rows: 4 rows x 100 = 400 > 200, so each rank takes 2 micro-batches of 2 rows.
    assert [len(m) for m in by_width[100]] == [2, 2, 2, 2]
    for step in steps:
        for rank in (0, 1):
            assert len(plan.rank_micro_batches(step, rank)) == len(step) // 2
        for micro in step:
            assert len(micro) * int(lengths[micro].max()) <= 200
    assert sorted(i for step in steps for m in step for i in m) == list(range(16))


def test_token_budget_plan_is_deterministic_balanced_and_within_budget() -> None:
    rng = np.random.default_rng(5)
    lengths = np.concatenate([rng.integers(8, 40, 600), rng.integers(200, 512, 200)])
    plan = BatchPlan(32, 1, 4, seed=9, group_batches=4, max_tokens=4096)
    steps = plan.epoch(lengths, 3)
    assert steps == plan.epoch(lengths, 3)  # resume re-plans the same epoch
    assert len(steps) == plan.steps_per_epoch(len(lengths)) == 6
    counts = set()
    for step in steps:
        assert len(step) % 4 == 0 and sum(len(m) for m in step) == 128
        sizes = [len(m) for m in step]
        assert max(sizes) - min(sizes) <= 1 and max(sizes) <= 32  # an even cut, row cap kept
        assert all(len(m) * int(lengths[m].max()) <= 4096 for m in step)
        counts.add(len(step) // 4)
    # Short-row steps take one micro-batch per rank; the long ones need more.
    assert min(counts) == 1 and max(counts) > 1
    # The fewest: one micro-batch less per rank would break the budget.
    for step in steps:
        k = len(step) // 4
        if k > 1:
            rows = np.sort(lengths[[i for m in step for i in m]])
            fewer = np.array_split(rows, 4 * (k - 1))
            assert max(len(p) * int(p.max()) for p in fewer) > 4096


def test_token_budget_smaller_than_a_row_is_refused() -> None:
    plan = BatchPlan(2, 1, 1, seed=0, group_batches=1, max_tokens=50)
    with pytest.raises(ValueError, match="a row of 60 tokens exceeds max_tokens 50"):
        plan.epoch(np.array([10, 60, 20, 30]), 0)
