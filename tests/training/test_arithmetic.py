"""The training arithmetic on hand-made inputs, with no shards built: which rows each
rank trains on, how a batch is padded and shifted, the LR schedule, and that the loss a
step back-propagates is the mean over every answer token of the step however its rows
are cut into micro-batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from transformers import BloomConfig, BloomForCausalLM  # imported here: its import runs lscpu

from training.data import IGNORE, BatchPlan, collate
from training.flops import StepFlops
from training.model import AnswerOnlyLM
from training.schedule import lr_multiplier
from training.train import optimizer_step


def test_collate_pads_right_and_labels_the_next_answer_token() -> None:
    samples = [
        (np.array([5, 6, 7, 8]), np.array([0, 0, 1, 1])),
        (np.array([9, 10, 11]), np.array([0, 1, 1])),
    ]
    batch = collate(samples, pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8], [9, 10, 11, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    # position t predicts token t+1, and only answer tokens (mask 1) are predicted
    assert batch["labels"].tolist() == [[IGNORE, 7, 8, IGNORE], [10, 11, IGNORE, IGNORE]]


def test_batch_plan_takes_each_row_once_and_gives_each_rank_its_share() -> None:
    lengths = np.arange(1, 35)  # 34 rows: 4 steps of 8, 2 rows left over
    plan = BatchPlan(micro_batch=2, grad_accum=2, world_size=2, seed=3, group_batches=2)
    assert plan.global_batch == 8 and plan.steps_per_epoch(len(lengths)) == 4
    steps = plan.epoch(lengths, epoch=0)
    rows = [i for step in steps for micro in step for i in micro]
    assert len(rows) == len(set(rows)) == 32
    for step in steps:
        assert [len(m) for m in step] == [2, 2, 2, 2]
        assert plan.rank_micro_batches(step, 0) + plan.rank_micro_batches(step, 1) == step
    assert plan.epoch(lengths, 0) == steps and plan.epoch(lengths, 1) != steps


def test_lr_warms_up_then_decays_to_zero_in_each_stage() -> None:
    multiplier = lr_multiplier([(10, 5), (4, 2)], warmup_ratio=0.2)
    # stage 1: 2 warm-up steps, then (10 - step) / 8; stage 2: 1 warm-up step, (4 - s) / 3
    assert [multiplier(s) for s in (0, 1, 2, 9)] == [0.5, 1.0, 1.0, 0.125]
    assert [multiplier(s) for s in (10, 11, 13)] == [1.0, 1.0, pytest.approx(1 / 3)]


class PlainEngine:
    """What optimizer_step needs of a DeepSpeed engine, as plain autograd on the CPU:
    backward accumulates into .grad, step does nothing (the update is DeepSpeed's)."""

    device = torch.device("cpu")

    def __init__(self, module: AnswerOnlyLM) -> None:
        self.module = module

    def __call__(self, **batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.module(**batch)

    def set_gradient_accumulation_boundary(self, boundary: bool) -> None:
        pass

    def backward(self, loss: torch.Tensor, scale_wrt_gas: bool = True) -> None:
        loss.backward()

    def step(self) -> None:
        pass


@pytest.fixture
def one_rank(tmp_path: Path) -> Iterator[None]:
    """A one-rank gloo group over a file store: the step's collectives run for real."""
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_step_loss_is_the_mean_over_every_answer_token(one_rank: None) -> None:
    torch.manual_seed(0)
    lm = BloomForCausalLM(BloomConfig(vocab_size=40, hidden_size=16, n_layer=1, n_head=2))
    rng = np.random.default_rng(0)
    rows = [
        (rng.integers(1, 40, n), np.r_[np.zeros(n - a, int), np.ones(a, int)])
        for n, a in ((9, 2), (5, 4), (7, 1), (6, 5))
    ]  # answers of 2, 4, 1 and 5 tokens: a mean per micro-batch would weigh them wrongly
    batches = [collate(rows[:1], 0), collate(rows[1:], 0)]
    flops = StepFlops(hidden=16, layers=1, vocab=40, block_params=1, adapter_params=0)
    counts, loss = optimizer_step(PlainEngine(AnswerOnlyLM(lm)), batches, flops, world=1)
    stepped = [p.grad.clone() for p in lm.parameters()]
    lm.zero_grad()
    whole = collate(rows, 0)
    total, answers = AnswerOnlyLM(lm)(**whole)
    (total / answers).backward()
    assert int(counts[0]) == int(answers) == 12 and loss == pytest.approx(float(total), 1e-6)
    for got, expected in zip(stepped, (p.grad for p in lm.parameters()), strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
