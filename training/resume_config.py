"""A run folder has one owner and one config: what a relaunch may and may not change.

- `hold_run_dir`: rank 0 takes the run folder's owner lock (core.lock) before anything
  is written there, so a second training in the same `run_dir` is refused; the launcher
  then stops that launch's other ranks.
- `config_changes`: a relaunch that will resume (`resume: auto` and a checkpoint in the
  folder) compares its resolved config with the saved `config.json`. A setting that
  changes what is trained (LR, schedule, batch, data, model, LoRA, precision, ...) is
  refused with the list of differences unless `--allow-config-change`; settings that
  only change bookkeeping (`HARMLESS`) pass. Every accepted change is appended to
  `config_changes.jsonl` with the step it took effect (`record_changes`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.fileio import write_json
from core.lock import hold
from core.typed_config import ConfigError, to_dict
from training.config import TrainConfig

CHANGES = "config_changes.jsonl"
# Settings that do not change the weights a step produces: logging, saving, the dev
# loss, exports, where the run folder is, and activation checkpointing (the same
# numbers, recomputed).
HARMLESS = (
    "log_every",
    "save_every",
    "keep_last",
    "eval_every",
    "export_merged",
    "resume",
    "run_dir",
    "activation_checkpointing",
)


def hold_run_dir(config: TrainConfig, rank: int) -> None:
    """Rank 0 owns the run folder for the life of its process (LockError otherwise)."""
    if rank == 0:
        hold(config.run_dir, "training run")


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}


def differences(saved: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Dotted key -> (saved value, new value) for every setting that differs."""
    old, now = _flat(saved), _flat(new)
    return {
        k: (old.get(k), now.get(k)) for k in sorted(set(old) | set(now)) if old.get(k) != now.get(k)
    }


def _harmless(key: str) -> bool:
    return key.split(".")[0] in HARMLESS


def will_resume(config: TrainConfig) -> bool:
    checkpoints = Path(config.run_dir) / "checkpoints"
    return config.resume == "auto" and any(p.is_dir() for p in checkpoints.glob("step*"))


def config_changes(config: TrainConfig, allow: bool) -> dict[str, tuple[Any, Any]]:
    """The changes against the saved config of a run this launch resumes (empty when it
    starts afresh); ConfigError listing the ones that change the run unless `allow`."""
    saved_path = Path(config.run_dir) / "config.json"
    if not (will_resume(config) and saved_path.is_file()):
        return {}
    try:
        saved = json.loads(saved_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(str(saved_path), [f"cannot read the saved config: {err}"]) from None
    changes = differences(saved, to_dict(config))
    refused = [k for k in changes if not _harmless(k)]
    if refused and not allow:
        raise ConfigError(
            f"resume of {config.run_dir}",
            [f"{k}: {changes[k][0]!r} in {saved_path}, now {changes[k][1]!r}" for k in refused]
            + [
                "these settings change the run being resumed; rerun with the saved values, "
                "use another run_dir (or resume=never) to start afresh, or pass "
                "--allow-config-change to continue with the new values (recorded in "
                f"{Path(config.run_dir) / CHANGES})"
            ],
        )
    return changes


def record_changes(
    config: TrainConfig, changes: dict[str, tuple[Any, Any]], global_step: int
) -> None:
    """Rank 0, after the resume: append the accepted changes and the step they took
    effect, then save the new config (the old one lives on in the record)."""
    run_dir = Path(config.run_dir)
    if changes:
        row = {
            "step": global_step,
            "changes": {k: {"was": a, "now": b} for k, (a, b) in changes.items()},
        }
        with open(run_dir / CHANGES, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, sort_keys=True) + "\n")
    write_json(run_dir / "config.json", to_dict(config))
