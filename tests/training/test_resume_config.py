"""What a relaunch of a run folder may change (in-process: the comparison and the record;
the refusal on a real killed run is in test_train.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.typed_config import ConfigError, to_dict
from training.config import TrainConfig, load_train_config
from training.resume_config import CHANGES, config_changes, record_changes


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run folder as a first launch leaves it: its config and one checkpoint."""
    run = tmp_path / "run"
    (tmp_path / "manifest.json").write_text("{}")  # the config checks only that it exists
    (run / "checkpoints" / "step00000004").mkdir(parents=True)
    config = load_train_config("tiny-cpu", [f"run_dir={run}", f"data={tmp_path}"])
    (run / "config.json").write_text(json.dumps(to_dict(config)))
    return run


def relaunch(run_dir: Path, *overrides: str) -> TrainConfig:
    return load_train_config(
        "tiny-cpu", [f"run_dir={run_dir}", f"data={run_dir.parent}", *overrides]
    )


def test_changes_that_alter_the_run_are_listed_and_refused(run_dir: Path) -> None:
    config = relaunch(run_dir, "lr=3e-3", "lora.rank=4", "micro_batch_size=4", "log_every=1")
    with pytest.raises(ConfigError) as refused:
        config_changes(config, allow=False)
    problems = refused.value.problems
    assert [p.split(":")[0] for p in problems[:-1]] == ["lora.rank", "lr", "micro_batch_size"]
    assert "log_every" not in str(refused.value)  # harmless: not a reason to refuse
    assert "--allow-config-change" in problems[-1]


def test_harmless_changes_pass_and_allowed_ones_are_recorded(run_dir: Path) -> None:
    harmless = relaunch(run_dir, "log_every=1", "save_every=7", "keep_last=5")
    assert set(config_changes(harmless, allow=False)) == {"log_every", "save_every", "keep_last"}
    allowed = relaunch(run_dir, "lr=3e-3")
    changes = config_changes(allowed, allow=True)
    assert changes == {"lr": (0.001, 0.003)}
    record_changes(allowed, changes, global_step=4)
    row = json.loads((run_dir / CHANGES).read_text())
    assert row == {"step": 4, "changes": {"lr": {"was": 0.001, "now": 0.003}}}
    assert json.loads((run_dir / "config.json").read_text())["lr"] == 0.003


def test_a_fresh_start_compares_nothing(run_dir: Path) -> None:
    assert config_changes(relaunch(run_dir, "lr=3e-3", "resume=never"), allow=False) == {}
    for step in (run_dir / "checkpoints").iterdir():
        step.rmdir()  # no checkpoint: nothing to resume
    assert config_changes(relaunch(run_dir, "lr=3e-3"), allow=False) == {}
