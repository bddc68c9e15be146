"""A tiny, locally built COMET checkpoint, for tests only.

`build_tiny_comet` makes a COMET `RegressionMetric` that needs nothing from a model hub:
a sentencepiece model trained on the given texts, a randomly initialised 2-layer
XLM-RoBERTa encoder saved with an `XLMRobertaTokenizerFast` built on that sentencepiece
model, and a few hundred optimiser steps on synthetic (src, mt, ref, score) triplets whose
score is a chrF-like character n-gram overlap between mt and ref. The result loads with
`comet.load_from_checkpoint` like any COMET checkpoint and ranks a hypothesis equal to its
reference above an unrelated one, but its scores mean nothing beyond that.

Real evaluation takes a real checkpoint path instead (e.g. the `checkpoints/model.ckpt`
of Unbabel/wmt22-comet-da, downloaded by the user beforehand).
"""

from __future__ import annotations

import csv
import random
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from eval.comet_score import quiet_lightning

Triplet = tuple[str, str, str, float]

ENCODER_DIR = "encoder"
CHECKPOINT = Path("checkpoints") / "model.ckpt"


def char_overlap(hyp: str, ref: str, max_n: int = 4, beta: float = 2.0) -> float:
    """chrF-like score in [0, 1]: character n-gram F-beta averaged over n = 1..max_n."""
    hyp, ref = hyp.replace(" ", ""), ref.replace(" ", "")
    if hyp == ref:
        return 1.0
    scores = []
    for n in range(1, max_n + 1):
        h = Counter(hyp[i : i + n] for i in range(len(hyp) - n + 1))
        r = Counter(ref[i : i + n] for i in range(len(ref) - n + 1))
        if not h or not r:
            continue
        match = sum((h & r).values())
        p, rc = match / sum(h.values()), match / sum(r.values())
        scores.append(0.0 if match == 0 else (1 + beta**2) * p * rc / (beta**2 * p + rc))
    return sum(scores) / len(scores) if scores else 0.0


def synthetic_triplets(texts: Sequence[str], seed: int = 1, n_refs: int = 400) -> list[Triplet]:
    """Per reference: itself (score 1), a word-dropped/shuffled copy and an unrelated text.

    The source is another random text, so the metric learns to look at mt against ref.
    """
    rng = random.Random(seed)
    pool = sorted({t.strip() for t in texts if t.strip()})
    if len(pool) < 2:
        raise ValueError(f"need at least 2 distinct non-empty texts, got {len(pool)}")
    refs = rng.sample(pool, min(n_refs, len(pool)))
    triplets: list[Triplet] = []
    for ref in refs:
        words = ref.split()
        kept = [w for w in words if rng.random() < 0.6] or words[:1]
        if rng.random() < 0.5:
            rng.shuffle(kept)
        other = rng.choice(pool)
        for mt in (ref, " ".join(kept), other):
            triplets.append((rng.choice(pool), mt, ref, char_overlap(mt, ref)))
    rng.shuffle(triplets)
    return triplets


def _train_sentencepiece(texts: Sequence[str], prefix: Path, vocab_size: int, seed: int) -> Path:
    import sentencepiece as spm

    lines = [t.strip() for t in texts if t.strip()]
    spm.set_random_generator_seed(seed)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,  # small corpora may not support the full vocabulary
        num_threads=1,
        minloglevel=2,
    )
    return prefix.with_suffix(".model")


def _build_encoder(texts: Sequence[str], out: Path, seed: int, vocab_size: int) -> Path:
    """Random tiny XLM-R + fast tokenizer in `out` (a folder `from_pretrained` can read)."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    with tempfile.TemporaryDirectory() as tmp:
        sp_model = _train_sentencepiece(texts, Path(tmp) / "spm", vocab_size, seed)
        tokenizer = XLMRobertaTokenizerFast(vocab_file=str(sp_model))  # converts to tokenizers
        tokenizer.save_pretrained(out)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=514,  # XLM-R positions start after padding_idx=1
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(out)
    return out


def build_tiny_comet(
    out_dir: Path,
    texts: Sequence[str],
    seed: int = 1,
    train_triplets: Sequence[Triplet] | None = None,
    *,
    max_steps: int = 300,
    batch_size: int = 16,
    vocab_size: int = 1000,
) -> Path:
    """Build and briefly train a tiny COMET regression metric; return its .ckpt path.

    For tests and offline demos only: real evaluation takes a real COMET checkpoint
    (e.g. wmt22-comet-da's `checkpoints/model.ckpt`).

    Layout written (what `comet.load_from_checkpoint` expects, hparams.yaml being looked
    up two levels above the .ckpt):

        out_dir/encoder/           tiny XLM-R weights + config + tokenizer
        out_dir/train.csv          the (src, mt, ref, score) training triplets
        out_dir/hparams.yaml
        out_dir/checkpoints/model.ckpt

    The checkpoint's `pretrained_model` is the absolute path of `out_dir/encoder`, so the
    folder must not be moved after building. `texts` train the sentencepiece model and, if
    `train_triplets` is None, the synthetic triplets (see `synthetic_triplets`). The build is
    deterministic for a given seed.
    """
    import pytorch_lightning as pl
    import torch
    from comet.models import RegressionMetric
    from pytorch_lightning.core.saving import save_hparams_to_yaml
    from torch.utils.data import DataLoader

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = list(texts)
    triplets = list(train_triplets) if train_triplets is not None else None
    if triplets is None:
        triplets = synthetic_triplets(texts, seed)
    if not triplets:
        raise ValueError("no training triplets")
    encoder_dir = _build_encoder(
        [*texts, *(t for trip in triplets for t in trip[:3])],
        out_dir / ENCODER_DIR,
        seed,
        vocab_size,
    )

    train_csv = out_dir / "train.csv"
    with train_csv.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["src", "mt", "ref", "score"])
        writer.writerows(triplets)
    samples = [{"src": s, "mt": m, "ref": r, "score": float(y)} for s, m, r, y in triplets]

    threads = torch.get_num_threads()
    # One thread: as fast for a model this small, and spared the 10-100x slowdowns of
    # OpenMP's busy-waiting threads when other processes compete for a small machine.
    torch.set_num_threads(1)
    with quiet_lightning():
        pl.seed_everything(seed, workers=True, verbose=False)
        model = RegressionMetric(
            nr_frozen_epochs=0,
            keep_embeddings_frozen=False,
            encoder_learning_rate=1e-3,
            learning_rate=3e-3,
            layerwise_decay=1.0,
            encoder_model="XLM-RoBERTa",
            pretrained_model=str(encoder_dir),
            pool="avg",
            layer="mix",
            dropout=0.0,
            batch_size=batch_size,
            train_data=[str(train_csv)],  # read by comet's setup() (it counts the samples)
            validation_data=[],
            hidden_sizes=[64],
            local_files_only=True,
        )
        loader = DataLoader(
            samples,
            batch_size=batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(seed),
            collate_fn=lambda batch: model.prepare_sample(batch, stage="fit"),
            num_workers=0,
        )
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            max_steps=max_steps,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
        )
        try:
            trainer.fit(model, train_dataloaders=loader)
        finally:
            torch.set_num_threads(threads)
        ckpt = out_dir / CHECKPOINT
        ckpt.parent.mkdir(exist_ok=True)
        trainer.save_checkpoint(ckpt, weights_only=True)
        save_hparams_to_yaml(out_dir / "hparams.yaml", dict(model.hparams))
    return ckpt
