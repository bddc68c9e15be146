"""Single-process, plain-PyTorch fine-tuning on prepared shards, with the same loss as
train.py; for smoke tests and benchmarks that need a model that ends its answers."""

from __future__ import annotations

from pathlib import Path

import torch

from data_prep.contract.manifest import read_manifest
from data_prep.contract.tokenizer import load_tokenizer
from training.data import BatchPlan, collate, load_stages
from training.model import AnswerOnlyLM, build_tiny_bloom, load_model


def quick_tiny_model(data: str | Path, out_dir: Path, steps: int = 250, seed: int = 3) -> Path:
    """A tiny BLOOM trained `steps` steps (batch 32, AdamW 3e-3) on the last stage."""
    tokenizer = load_tokenizer(read_manifest(data)["tokenizer"]["name_or_path"])
    build_tiny_bloom(tokenizer, out_dir, hidden=64, layers=2, heads=4, seed=seed)
    model = AnswerOnlyLM(load_model(str(out_dir), False, torch.float32))
    stage = load_stages(data)[-1]
    plan = BatchPlan(micro_batch=32, grad_accum=1, world_size=1, seed=seed, group_batches=8)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(seed)
    schedule, epoch = plan.epoch(stage.lengths, 0), 0
    while len(schedule) < steps:  # a stage smaller than `steps` batches: more epochs
        epoch += 1
        schedule += plan.epoch(stage.lengths, epoch)
    for step in schedule[:steps]:
        loss, count = model(**collate([stage[i] for i in step[0]], tokenizer.pad_token_id))
        (loss / count).backward()
        optimizer.step()
        optimizer.zero_grad()
    model.lm.save_pretrained(out_dir, safe_serialization=True)
    return out_dir
