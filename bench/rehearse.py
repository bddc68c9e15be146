"""Rehearse a BLOOMZ size at its real shape on 2 CPU ranks, before spending GPU time.

    OMP_NUM_THREADS=1 python bench/rehearse.py [--preset bloomz-560m] [--modes lora,full] \
        [--steps 3] [--micro-batch 2] [--out runs/rehearse]

A random model with the preset's exact config.json (250,880-token vocabulary, tied
embeddings, every layer) is saved locally in bf16; FreeDict de-en (fetched with
`apt-get download`) is tokenized with a local BPE widened to the model's vocabulary and
built into MT shards; then, per mode, `training/train.py` runs a few bf16 steps under
ZeRO-3 on 2 ranks with the shipped `training/configs/<preset>-<mode>.yaml`, exports,
and `python -m eval run` decodes a few sentences with the export. Printed at the end, as
JSON: the measured peak memory per rank (summary.json, rank 0) against the planner's
prediction for the same run (`training.plan --device cpu`).

A mode is skipped when the planner's prediction for 2 ranks exceeds the memory free now
(560m full needs about 10 GB per rank); `--force` runs it anyway.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.realshape import build_shards, random_model, widen_tokenizer
from training.plan import parse_args as plan_args
from training.plan import plan
from training.presets import PRESET_NAMES, preset_config

REPO = Path(__file__).resolve().parents[1]
RANKS = 2


def prepare(out: Path, preset: str) -> tuple[Path, Path, Path]:
    """(corpus, shards, model folder), each built once."""
    from data_prep.freedict import build_corpus, fetch_deb
    from data_prep.tokenizer import train_tokenizer

    corpus = out / "corpus"
    if not (corpus / "test.en").exists():
        build_corpus(fetch_deb(out / "deb"), corpus)
    wide = out / "tokenizer-wide"
    if not (wide / "tokenizer.json").exists():
        small = train_tokenizer([corpus / "train.de", corpus / "train.en"], out / "tok", 2000)
        widen_tokenizer(small, wide, preset_config(preset)["vocab_size"])
    shards = out / "shards"
    if not (shards / "manifest.json").exists():
        build_shards(corpus, wide, shards, "curriculum=MT")
    model = out / f"{preset}-random"
    if not (model / "config.json").exists():
        print(f"saving a random {preset} (bf16) to {model}", flush=True)
        random_model(preset_config(preset), wide, model, "bfloat16")
    return corpus, shards, model


def overrides(shards: Path, model: Path, run: Path, args: argparse.Namespace) -> list[str]:
    return [
        f"data={shards}", f"run_dir={run}", f"model.name={model}", "precision=bf16",
        f"micro_batch_size={args.micro_batch}", "grad_accum=1", "log_every=1",
        f"max_steps_per_stage={args.steps}", "save_every=100000", "keep_last=1",
    ]  # fmt: skip


def predicted(
    config: Path, extra: list[str], seq_len: int, micro_batch: int, answer_share: float = 0.5
) -> dict:
    argv = ["--config", str(config), "--device", "cpu", "--nodes", "1"]
    argv += ["--gpus-per-node", str(RANKS), "--cpu-memory-gb", "1e9"]
    argv += ["--seq-len", str(seq_len), "--micro-batch", str(micro_batch)]
    argv += ["--answer-share", f"{answer_share:.3f}", *extra]
    return plan(plan_args(argv))


def free_gb() -> float:
    import psutil

    return psutil.virtual_memory().available / 2**30


def train(config: Path, extra: list[str]) -> float:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    with socket.socket() as probe:  # a free port: never collide with another run
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    command = [
        str(Path(sys.executable).with_name("deepspeed")), "--num_accelerators", str(RANKS),
        "--master_port", port, str(REPO / "training" / "train.py"), "--config", str(config),
        *extra,
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, env=env, check=True)
    return time.perf_counter() - started


def decode(corpus: Path, model: Path, out: Path) -> list[str]:
    command = [
        sys.executable, "-m", "eval", "run", "--grid", "freedict", f"corpus.path={corpus}/",
        "max_sentences=4", "--max-new-tokens", "12", "--model", str(model), "--out", str(out),
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO))
    subprocess.run(command, cwd=REPO, env=env, check=True)
    return (out / "hyps" / "de-en.txt").read_text(encoding="utf-8").splitlines()


def rehearse_mode(mode: str, args: argparse.Namespace, prepared: tuple[Path, Path, Path]) -> dict:
    corpus, shards, model = prepared
    config = REPO / "training" / "configs" / f"{args.preset}-{mode}.yaml"
    run = args.out / mode
    extra = overrides(shards, model, run, args)
    if mode == "lora":
        extra.append("export_merged=true")
    before = predicted(config, extra, 64, args.micro_batch)["per_rank_gb"]
    if before * RANKS > free_gb() and not args.force:
        return {"mode": mode, "skipped": f"needs ~{before:.1f} GB x {RANKS}, {free_gb():.1f} free"}
    seconds = train(config, extra)
    summary = json.loads((run / "summary.json").read_text())
    rows = summary["steps"] * args.micro_batch * RANKS
    seq_len = round(summary["padded_tokens"] / rows)  # the mean padded row length that ran
    share = summary["answer_tokens"] / summary["tokens"]
    plan_gb = predicted(config, extra, seq_len, args.micro_batch, share)["per_rank_gb"]
    measured = summary["peak_memory_mb"] / 1024
    export = run / "export" / ("model" if mode == "full" else "merged")
    return {
        "mode": mode,
        "trainable_parameters": summary["trainable_parameters"],
        "total_parameters": summary["total_parameters"],
        "mean_row_tokens": seq_len,
        "measured_peak_gb_per_rank": round(measured, 2),
        "planner_gb_per_rank": plan_gb,
        "planner_over_measured": round(plan_gb / measured, 3),
        "wall_seconds": round(seconds, 1),
        "decoded": decode(corpus, export, run / "eval"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="bloomz-560m", choices=PRESET_NAMES)
    parser.add_argument("--modes", default="lora,full", help="in this order (LoRA is lighter)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--micro-batch", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "rehearse")
    parser.add_argument("--force", action="store_true", help="run even if memory looks short")
    args = parser.parse_args()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    prepared = prepare(args.out, args.preset)
    results = [rehearse_mode(mode, args, prepared) for mode in args.modes.split(",")]
    print(json.dumps({"preset": args.preset, "ranks": RANKS, "results": results}, indent=2))


if __name__ == "__main__":
    main()
