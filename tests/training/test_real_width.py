"""BLOOM's real vocabulary width (250,880) with a tiny hidden size, end to end: int32
shards, 2-rank ZeRO-3 full and LoRA training (partitioned embedding, tied output layer,
answer-only logits), exports (model, adapter, merged) and eval decoding in a fresh
process. What breaks only at the real width breaks here first."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.realshape import BLOOM_VOCAB, build_shards, widen_tokenizer
from tests.conftest import REPO_ROOT
from tests.training.conftest import losses, run_training

SHAPE = ("model.tiny_hidden=32", "model.tiny_layers=2", "model.tiny_heads=2")


@pytest.fixture(scope="module")
def wide_shards(
    tokenizer_dir: Path, freedict_corpus: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    root = tmp_path_factory.mktemp("wide")
    tokenizer = widen_tokenizer(tokenizer_dir, root / "tokenizer")
    return build_shards(freedict_corpus, tokenizer, root / "shards", "curriculum=MT")


def train(shards: Path, run_dir: Path, *extra: str) -> dict[int, float]:
    result = run_training(
        f"data={shards}", f"run_dir={run_dir}", *SHAPE, "max_steps_per_stage=4",
        "micro_batch_size=4", "log_every=1", "lr=1e-2", *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return losses(run_dir)


def decode(corpus: Path, out: Path, *model: str) -> list[str]:
    """`python -m eval run` in a fresh process; the de-en hypotheses."""
    result = subprocess.run(
        [sys.executable, "-m", "eval", "run", "--grid", "freedict", f"corpus.path={corpus}/",
         "max_sentences=3", "--max-new-tokens", "6", "--out", str(out), *model],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return (out / "hyps" / "de-en.txt").read_text(encoding="utf-8").splitlines()


def test_real_width_train_export_decode(
    wide_shards: Path, freedict_corpus: Path, tmp_path: Path
) -> None:
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    manifest = json.loads((wide_shards / "manifest.json").read_text())
    assert manifest["tokenizer"]["vocab_size"] == BLOOM_VOCAB
    prefix = next(wide_shards.rglob("shard-00000.idx")).with_suffix("")
    assert IndexedDataset(str(prefix), mmap=True).index.dtype.__name__ == "int32"

    full = tmp_path / "full"
    seen = train(wide_shards, full)
    assert sorted(seen) == [1, 2, 3, 4]
    assert abs(seen[1] - math.log(BLOOM_VOCAB)) < 0.5  # a random head over all 250,880 ids
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    exported = full / "export" / "model"
    model = AutoModelForCausalLM.from_pretrained(exported)
    initial = AutoModelForCausalLM.from_pretrained(full / "tiny-model")
    embedding = model.get_input_embeddings().weight
    assert tuple(embedding.shape) == (BLOOM_VOCAB, 32)
    assert model.get_output_embeddings().weight.data_ptr() == embedding.data_ptr()  # tied
    assert not embedding.equal(initial.get_input_embeddings().weight)  # trained, then saved
    with safe_open(str(exported / "model.safetensors"), "pt") as f:
        names = set(f.keys())
    assert names and not any("lm_head" in name for name in names)

    lora = tmp_path / "lora"
    train(wide_shards, lora, "finetune=lora", "export_merged=true")
    assert (lora / "export" / "adapter" / "adapter_model.safetensors").exists()

    full_hyps = decode(freedict_corpus, tmp_path / "eval-full", "--model", str(exported))
    merged = decode(
        freedict_corpus, tmp_path / "eval-merged", "--model", str(lora / "export" / "merged")
    )
    adapter = decode(
        freedict_corpus, tmp_path / "eval-adapter", "--model", str(lora / "tiny-model"),
        "--adapter", str(lora / "export" / "adapter"),
    )  # fmt: skip
    assert len(full_hyps) == len(merged) == 3
    assert adapter == merged
