"""ZeRO-3 on 2 ranks with gradient accumulation computes the same training as a plain
single-process PyTorch loop, for full fine-tuning and for LoRA (the reference adds the
same adapter with peft, from the same seed): a speed-up must not come from computing
something else, and ZeRO-3 must not drop or distort the adapter's update.

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
# LoRA: B starts at zero, so the first gradients are small; a clip that acts on them.
LORA_RANK, LORA_ALPHA, LORA_CLIP = 4, 8, 0.004
LORA_TARGETS = ["query_key_value", "dense_4h_to_h"]


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


def with_lora(model: torch.nn.Module) -> torch.nn.Module:
    """peft's LoRA on `model`, its random init drawn right after seeding (as train.py does)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(SEED)
    config = LoraConfig(r=LORA_RANK, lora_alpha=LORA_ALPHA, lora_dropout=0.0,
                        target_modules=LORA_TARGETS, task_type="CAUSAL_LM")  # fmt: skip
    return get_peft_model(model, config)


def reference_training(
    init: Path, shards: Path, plan: Any, lora: bool = False, clip: float = CLIP
) -> tuple[torch.nn.Module, list[float]]:
    """Plain PyTorch, one process: returns the model and each step's gradient norm."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.data import load_stages

    model = AutoModelForCausalLM.from_pretrained(init, dtype=torch.float32)
    model = with_lora(model).train() if lora else model
    trainable = [p for p in model.parameters() if p.requires_grad]
    pad = AutoTokenizer.from_pretrained(init).pad_token_id
    stage = load_stages(shards)[0]
    optimizer = torch.optim.AdamW(
        trainable, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=DECAY
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
        norms.append(float(torch.nn.utils.clip_grad_norm_(trainable, clip)))
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
        extra = [
            f"global_batch_size={MICRO * RANKS}",
            "grad_accum=null",
            f"max_tokens_per_micro_batch={budget}",
        ]
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


def test_zero3_lora_adapter_equals_plain_pytorch_and_peft(mt_shards: Path, tmp_path: Path) -> None:
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from training.data import BatchPlan

    run = tmp_path / "lora"
    targets = "[" + ", ".join(LORA_TARGETS) + "]"
    result = run_training(
        f"data={mt_shards}", f"run_dir={run}", "deepspeed=zero3_cpu", f"micro_batch_size={MICRO}",
        f"grad_accum={ACCUM}", f"max_steps_per_stage={STEPS}", f"lr={LR}",
        f"warmup_ratio={WARMUP_RATIO}", f"grad_clip={LORA_CLIP}", f"weight_decay={DECAY}",
        f"seed={SEED}", "save_every=1000", "log_every=1", "finetune=lora",
        f"lora.rank={LORA_RANK}", f"lora.alpha={LORA_ALPHA}", "lora.dropout=0.0",
        f"lora.target_modules={targets}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    trained = load_file(run / "export" / "adapter" / "adapter_model.safetensors")
    plan = BatchPlan(MICRO, ACCUM, RANKS, SEED, 64)
    model, norms = reference_training(run / "tiny-model", mt_shards, plan, True, LORA_CLIP)
    expected = get_peft_model_state_dict(model)
    base = AutoModelForCausalLM.from_pretrained(run / "tiny-model")
    init = get_peft_model_state_dict(with_lora(base))
    assert max(norms) > LORA_CLIP, "clipping never acted: the test would not cover it"
    assert trained.keys() == expected.keys() and len(expected) == 2 * 2 * len(LORA_TARGETS)
    for name, weight in expected.items():
        # Every adapter tensor moved (B from zero), and the two trainings agree to
        # round-off: the same init, the same batches, the same update.
        assert float((weight - init[name]).abs().max()) > 1e-4, name
        torch.testing.assert_close(trained[name], weight, rtol=1e-5, atol=1e-6, msg=name)
