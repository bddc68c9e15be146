"""What produced a direction's hypotheses, and whether a finished file may be reused.

`hyps/{src}-{tgt}.meta.json` records the model and adapter (name and a fingerprint of
their files, or the hub commit), the template version, decode settings, library
versions, the corpus spec, language names, sentence cap, and sha256s of the test files
and of the exact sources and references read. A rerun skips a direction only when all
of it is equal and the hypothesis file is complete (one newline-terminated line per
source); anything else is decoded again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.fileio import sha256_file
from core.typed_config import to_dict
from data_prep.contract.templates import Templates
from eval.decode import DecodeConfig
from eval.directions import Direction, TestSet


def folder_fingerprint(name: str | None) -> str | None:
    """A hash of a local folder's file names, sizes and modification times (a model
    saved again gets a new one; hashing the weights of a 7b1 model would take minutes).
    None for a hub name."""
    if name is None or not Path(name).expanduser().is_dir():
        return None
    root = Path(name).expanduser()
    listing = [
        (str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()


def producer(
    model: str, adapter: str | None, lm: Any, templates: Templates, decode: DecodeConfig
) -> dict[str, Any]:
    """What every direction of one run shares."""
    import torch
    import transformers

    return {
        "model": model,
        "model_files": folder_fingerprint(model),
        "model_commit": getattr(lm.config, "_commit_hash", None),
        "adapter": adapter,
        "adapter_files": folder_fingerprint(adapter),
        "dtype": str(next(lm.parameters()).dtype),
        "template_version": templates.version,
        "decode": asdict(decode),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }


class FileHashes:
    """sha256 of each test file, computed once per run (directions share files)."""

    def __init__(self) -> None:
        self._known: dict[str, str] = {}

    def of(self, direction: Direction) -> dict[str, str]:
        result = {}
        for path in direction.files:
            key = str(path)
            if key not in self._known and Path(path).is_file():
                self._known[key] = sha256_file(path)
            if key in self._known:
                result[key] = self._known[key]
        return result


def meta_for(
    direction: Direction, test_set: TestSet, shared: dict[str, Any], files: dict[str, str]
) -> dict[str, Any]:
    return {
        **shared,
        "direction": direction.name,
        "corpus": to_dict(direction.corpus),
        "split": direction.split,
        "language_names": [direction.src_name, direction.tgt_name],
        "max_sentences": direction.max_sentences,
        "sentences": len(test_set.sources),
        "test_files": files,
        "text_sha256": test_set.sha256(),
    }


def complete_lines(path: Path, expected: int) -> bool:
    """Whether `path` holds exactly `expected` newline-terminated lines."""
    data = path.read_bytes()
    if expected == 0:
        return not data
    return data.endswith(b"\n") and data.count(b"\n") == expected


def reusable(hyp_path: Path, meta_path: Path, meta: dict[str, Any]) -> bool:
    """A finished direction produced by exactly the same inputs and settings."""
    if not (hyp_path.is_file() and meta_path.is_file()):
        return False
    try:
        recorded = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return recorded == meta and complete_lines(hyp_path, meta["sentences"])


# What a direction's hypotheses must have been decoded from for `eval score` to pair
# them with the grid's references: the meta fields that come from the grid, not the model.
GRID_FIELDS = (
    "direction",
    "corpus",
    "split",
    "language_names",
    "max_sentences",
    "sentences",
    "test_files",
    "text_sha256",
)


def stale_problems(out: Path, found: list[Direction], test_sets: dict[str, TestSet]) -> list[str]:
    """One problem per direction whose hypotheses were not decoded from the grid's
    current inputs (test files, text read, split, corpus, names, cap), naming what
    differs; `eval run` with the same --out decodes exactly those again."""
    hashes, problems = FileHashes(), []
    for direction in found:
        meta_path = out / "hyps" / f"{direction.name}.meta.json"
        hyp_path = out / "hyps" / f"{direction.name}.txt"
        if not hyp_path.is_file():
            continue  # read_hypotheses names a missing file
        expected = meta_for(direction, test_sets[direction.name], {}, hashes.of(direction))
        try:
            recorded = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            problems.append(
                f"{direction.name}: {meta_path} is missing or unreadable, so nothing says "
                "which test set the hypotheses were decoded from"
            )
            continue
        differ = [key for key in GRID_FIELDS if recorded.get(key) != expected[key]]
        if differ:
            details = ", ".join(
                f"{key} (decoded from {_short(recorded.get(key))}, grid now "
                f"{_short(expected[key])})"
                for key in differ
            )
            problems.append(f"{direction.name}: {hyp_path} is stale: {details}")
    if problems:
        problems.append(
            "these hypotheses were not decoded from the grid's current inputs and would be "
            "scored against the wrong references; run `python -m eval run` with the same "
            "grid, --model and --out to decode the stale directions again (the others are "
            "kept), or point the grid back at the inputs they were decoded from"
        )
    return problems


def _short(value: Any) -> str:
    """A meta value for a message: hashes cut to 12 characters."""
    if isinstance(value, str) and len(value) == 64:
        return value[:12]
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    return repr(value)
