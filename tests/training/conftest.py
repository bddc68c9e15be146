"""Helpers to launch real 2-rank DeepSpeed runs of training/train.py on CPU."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT

DEEPSPEED = str(Path(sys.executable).with_name("deepspeed"))
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
TRAIN = str(REPO_ROOT / "training" / "train.py")
TINY = str(REPO_ROOT / "training" / "configs" / "tiny-cpu.yaml")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_command(*overrides: str, ranks: int = 2, launcher: str = "deepspeed") -> list[str]:
    """deepspeed (one CPU "device" per NUMA node, hence --num_accelerators) or torchrun."""
    port = str(free_port())  # never collide with another run on this machine
    if launcher == "torchrun":
        prefix = [TORCHRUN, "--nproc_per_node", str(ranks), "--master_port", port]
    else:
        prefix = [DEEPSPEED, "--num_accelerators", str(ranks), "--master_port", port]
    return [*prefix, TRAIN, "--config", TINY, *overrides]


def train_env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def run_training(
    *overrides: str, timeout: int = 600, launcher: str = "deepspeed"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        launch_command(*overrides, launcher=launcher), cwd=REPO_ROOT, env=train_env(),
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def train_rows(run_dir: Path) -> list[dict]:
    """The training rows of metrics.jsonl (dev-loss rows, which carry `dev_loss`, left out)."""
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [row for row in map(json.loads, lines) if "loss" in row]


def logged_steps(run_dir: Path) -> list[int]:
    return [row["step"] for row in train_rows(run_dir)]


def losses(run_dir: Path) -> dict[int, float]:
    """The last logged loss of every step."""
    return {row["step"]: row["loss"] for row in train_rows(run_dir)}


@pytest.fixture(scope="session", autouse=True)
def clean_shared_memory() -> Iterator[None]:
    """Remove what killed runs leave in /dev/shm (finished runs remove their own)."""
    before = set(Path("/dev/shm").glob("deepspeed_*")) | set(Path("/dev/shm").glob("mpich_*"))
    yield
    after = set(Path("/dev/shm").glob("deepspeed_*")) | set(Path("/dev/shm").glob("mpich_*"))
    for path in after - before:
        path.unlink(missing_ok=True)


def copy_build(built: Path, out: Path) -> Path:
    """A private copy of the shared build (for tests that damage or extend it)."""
    shutil.copytree(built, out, ignore=shutil.ignore_patterns("corpus", "alignments"))
    return out


def add_dev_split(build: Path, every: int = 40) -> dict:
    """Give `build` a `dev` entry as the data-prep contract describes it: every `every`-th
    sample of the last (MT) stage, written as dev shards with their sha256s. A stand-in
    for the dev split the demo's build writes, so the training side is tested alone."""
    from data_prep.contract.manifest import read_manifest
    from data_prep.contract.shards import token_dtype
    from data_prep.shards import Encoded, ShardWriter
    from training.data import StageData

    manifest = read_manifest(build)
    source = manifest["stages"][-1]
    stage = StageData(build / source["name"], source)
    samples = [stage[i] for i in range(0, len(stage), every)]
    writer = ShardWriter(build / "dev", token_dtype(manifest["tokenizer"]["vocab_size"]), 10**9)
    writer.add(
        Encoded(
            ids=np.concatenate([ids for ids, _ in samples]),
            lengths=np.array([len(ids) for ids, _ in samples]),
            prompt_lengths=np.array([int(np.argmax(mask)) for _, mask in samples]),
        )
    )
    shards = [dataclasses.asdict(info) for info in writer.close()]
    answer = sum(int(mask.sum()) for _, mask in samples)
    manifest["dev"] = {
        "name": "dev", "samples": len(samples), "tokens": sum(s["tokens"] for s in shards),
        "answer_tokens": answer, "shards": shards,
    }  # fmt: skip
    (build / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest
