"""ZeRO-3 on 2 ranks with gradient accumulation computes the same training as a plain
single-process PyTorch loop: a speed-up must not come from computing something else.

train.py runs a few steps (2 ranks, ZeRO-3, grad_accum 2, warm-up, decay, clipping and
weight decay all active); the reference, written here with nothing from training/ but
the shard reader and the batch plan (which samples form each global step), starts from
the same saved init and takes the same global batches with the token-mean loss of the
full model's logits, torch AdamW, clip_grad_norm_ and the documented LR schedule (linear
warm-up over int(warmup_ratio * steps) steps, then linear decay to zero). The exported
weights must equal the reference's within fp32 round-off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from data_prep.build import build
from data_prep.recipe import load_recipe
from tests.conftest import freedict_overrides
from tests.training.conftest import run_training

STEPS, MICRO, ACCUM, RANKS = 4, 4, 2, 2
LR, WARMUP_RATIO, CLIP, DECAY, SEED = 3e-3, 0.5, 0.05, 0.1, 7


@pytest.fixture(scope="module")
def mt_shards(
    freedict_corpus: Path, tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """MT instructions of the first 300 FreeDict pairs, both directions (no aligner)."""
    recipe = load_recipe(
        "freedict",
        freedict_overrides(freedict_corpus, tokenizer_dir, "curriculum=MT", "max_pairs=300"),
    )
    out = tmp_path_factory.mktemp("exact") / "shards"
    build(recipe, out, cache_dir=tmp_path_factory.mktemp("exact-cache"), progress=False)
    return out


def lr_factor(step: int) -> float:
    """The schedule as documented: warm-up to the peak over `warm` steps, decay to 0."""
    warm = int(WARMUP_RATIO * STEPS)
    if step < warm:
        return (step + 1) / warm
    return (STEPS - step) / (STEPS - warm)


def padded(samples: list[tuple[torch.Tensor, torch.Tensor]], pad: int) -> tuple[torch.Tensor, ...]:
    """Right-padded ids, attention mask, and next-token labels where the loss mask is 1."""
    width = max(len(ids) for ids, _ in samples)
    ids = torch.full((len(samples), width), pad)
    attention = torch.zeros((len(samples), width), dtype=torch.long)
    labels = torch.full((len(samples), width), -100)
    for row, (tokens, mask) in enumerate(samples):
        n = len(tokens)
        ids[row, :n], attention[row, :n] = torch.as_tensor(tokens), 1
        targets = torch.where(torch.as_tensor(mask).bool(), torch.as_tensor(tokens), -100)
        labels[row, : n - 1] = targets[1:]
    return ids, attention, labels


def token_budget(shards: Path) -> int:
    """A budget under which some of the first steps take 1 micro-batch per rank and some
    more (micro 4, no fixed accumulation): the boundary moves from step to step."""
    from training.data import BatchPlan, load_stages

    lengths = load_stages(shards)[0].lengths
    for budget in range(int(lengths.max()), MICRO * int(lengths.max()) + 1):
        plan = BatchPlan(MICRO, 1, RANKS, SEED, 64, max_tokens=budget)
        if len({len(step) for step in plan.epoch(lengths, 0)[:STEPS]}) > 1:
            return budget
    raise AssertionError("no budget gives steps of different micro-batch counts")


def reference_training(init: Path, shards: Path, plan: Any) -> tuple[torch.nn.Module, list[float]]:
    """Plain PyTorch, one process: returns the model and each step's gradient norm."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.data import load_stages

    model = AutoModelForCausalLM.from_pretrained(init, dtype=torch.float32)
    pad = AutoTokenizer.from_pretrained(init).pad_token_id
    stage = load_stages(shards)[0]
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=DECAY
    )
    norms = []
    for step, micro_batches in enumerate(plan.epoch(stage.lengths, 0)[:STEPS]):
        batches = [padded([stage[i] for i in ids], pad) for ids in micro_batches]
        answer_tokens = sum(int((labels != -100).sum()) for *_, labels in batches)
        for ids, attention, labels in batches:
            logits = model(input_ids=ids, attention_mask=attention).logits
            loss = F.cross_entropy(
                logits.flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum"
            )
            (loss / answer_tokens).backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)))
        for group in optimizer.param_groups:
            group["lr"] = LR * lr_factor(step)
        optimizer.step()
        optimizer.zero_grad()
    return model, norms


@pytest.mark.parametrize("batching", ["rows", "tokens"])
def test_zero3_two_ranks_grad_accum_equals_plain_pytorch(
    batching: str, mt_shards: Path, tmp_path: Path
) -> None:
    """rows: grad_accum 2 of 4 rows; tokens: micro-batches packed by a token budget, 1 or
    more per rank depending on the step (train.py marks DeepSpeed's boundary itself)."""
    from training.data import BatchPlan

    if batching == "rows":
        plan, extra = BatchPlan(MICRO, ACCUM, RANKS, SEED, 64), [f"grad_accum={ACCUM}"]
    else:
        budget = token_budget(mt_shards)
        plan = BatchPlan(MICRO, 1, RANKS, SEED, 64, max_tokens=budget)
        extra = [f"global_batch_size={MICRO * RANKS}", f"max_tokens_per_micro_batch={budget}"]
    run = tmp_path / "zero3"
    result = run_training(
        f"data={mt_shards}", f"run_dir={run}", "deepspeed=zero3_cpu", f"micro_batch_size={MICRO}",
        *extra, f"max_steps_per_stage={STEPS}", f"lr={LR}",
        f"warmup_ratio={WARMUP_RATIO}", f"grad_clip={CLIP}", f"weight_decay={DECAY}",
        f"seed={SEED}", "save_every=1000", "log_every=1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    from transformers import AutoModelForCausalLM

    init = AutoModelForCausalLM.from_pretrained(run / "tiny-model").state_dict()
    trained = AutoModelForCausalLM.from_pretrained(run / "export" / "model").state_dict()
    model, norms = reference_training(run / "tiny-model", mt_shards, plan)
    expected = model.state_dict()
    assert max(norms) > CLIP, "clipping never acted: the test would not cover it"
    assert trained.keys() == expected.keys()
    for name, weight in expected.items():
        moved = float((weight - init[name]).abs().max())
        off = float((trained[name] - weight).abs().max())
        # Every tensor moved (decay alone moves the embeddings), by far more than the
        # difference between the two trainings, which is round-off only.
        assert moved > 1e-4, (name, moved)
        assert off <= 1e-6 + 1e-3 * moved, (name, off, moved)
        torch.testing.assert_close(trained[name], weight, rtol=1e-5, atol=1e-6, msg=name)
