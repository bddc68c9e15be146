"""COMET scoring of system outputs against references, from a local checkpoint.

The checkpoint is a path to a COMET `.ckpt` (e.g. wmt22-comet-da's `checkpoints/model.ckpt`,
downloaded beforehand; its `hparams.yaml` sits two levels up). Offline use of a real
checkpoint also needs its encoder's tokenizer/config (`xlm-roberta-large`) in the
Hugging Face cache, with HF_HUB_OFFLINE=1. Tests build a tiny one offline
(`tests/support/tiny_comet.py`).
"""

from __future__ import annotations

import logging
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import yaml

from core.devices import compute_device

_MODELS: dict[str, Any] = {}


QUIET_LOGGERS = ("pytorch_lightning", "lightning", "lightning_fabric", "comet")


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's/COMET's info logging and chatty warnings for the duration."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"(pytorch_)?lightning.*")
            warnings.filterwarnings("ignore", message=r".*num_workers.*")
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def checkpoint_problems(checkpoint: str | Path, key: str = "comet") -> list[str]:
    """Why `checkpoint` cannot be a COMET checkpoint, found without loading it: a missing
    file, no `hparams.yaml` two folders up (COMET reads its model class there), or a file
    that is not a complete PyTorch checkpoint (zip archive)."""
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "no such file"
        return [
            f"{key}: {checkpoint}: {what}; expected a COMET checkpoint file "
            "(e.g. wmt22-comet-da/checkpoints/model.ckpt)"
        ]
    found = []
    hparams = path.parents[1] / "hparams.yaml"
    try:
        identifier = (yaml.safe_load(hparams.read_text(encoding="utf-8")) or {})["class_identifier"]
        if not isinstance(identifier, str):
            raise TypeError(identifier)
    except FileNotFoundError:
        found.append(f"{key}: {hparams}: missing; COMET reads it two folders above the checkpoint")
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError) as err:
        found.append(f"{key}: {hparams}: no readable class_identifier ({err!r})")
    if not zipfile.is_zipfile(path):
        found.append(f"{key}: {checkpoint}: not a complete PyTorch checkpoint (cut short or "
                     "another kind of file)")  # fmt: skip
    return found


def load_comet(checkpoint: str | Path) -> Any:
    """Load a COMET model once per checkpoint path (cached for the process)."""
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise ValueError(f"COMET checkpoint not found: {path}")
    key = str(path.resolve())
    if key not in _MODELS:
        from comet import load_from_checkpoint

        with quiet_lightning():
            _MODELS[key] = load_from_checkpoint(key)
    return _MODELS[key]


def comet_score(
    checkpoint: str | Path,
    sources: Sequence[str],
    hypotheses: Sequence[str],
    references: Sequence[str],
    batch_size: int = 32,
    device: torch.device | None = None,
) -> tuple[float, list[float]]:
    """Return (system score, segment scores) of `hypotheses` under a COMET checkpoint.

    Runs on `device` (default this rank's GPU when there is one, else the CPU; one device,
    so that ranks score their own directions side by side). The system score is the mean
    of the segment scores, which come back in input order.
    """
    counts = (len(sources), len(hypotheses), len(references))
    if len(set(counts)) != 1:
        raise ValueError(
            "sources, hypotheses and references differ in length: "
            f"{counts[0]} sources, {counts[1]} hypotheses, {counts[2]} references"
        )
    if counts[0] == 0:
        raise ValueError("nothing to score: no segments given")
    model = load_comet(checkpoint)
    device = device or compute_device()
    on_gpu = device.type == "cuda"
    samples = [
        {"src": str(s), "mt": str(h), "ref": str(r)}
        for s, h, r in zip(sources, hypotheses, references, strict=True)
    ]
    with quiet_lightning():
        output = model.predict(
            samples, batch_size=batch_size, gpus=1 if on_gpu else 0,
            devices=[device.index or 0] if on_gpu else None, progress_bar=False,
        )  # fmt: skip
    scores = [float(x) for x in output.scores]
    return float(output.system_score), scores
