"""metrics.jsonl rows: the interval's token-weighted loss, the step's own LR, no duplicates
after a resume; and the typed resume position."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.typed_config import ConfigError
from tests.training.conftest import TINY
from training.checkpoints import LossWindow, ResumePosition
from training.config import TrainConfig, load_train_config
from training.logs import MetricsLogger, StepCounts, trim_metrics


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def logger(run: Path, position: ResumePosition | None = None, log_every: int = 3):
    config = TrainConfig(data=str(run), run_dir=str(run), log_every=log_every)
    return MetricsLogger(run, 0, config, 2, (10, 100), position)


def test_loss_is_the_token_weighted_mean_over_the_interval(tmp_path: Path) -> None:
    log = logger(tmp_path)
    log.start_stage("s1", 6, 0)
    steps = [(30.0, 10, 2e-4), (10.0, 40, 3e-4), (6.0, 2, 4e-4), (8.0, 4, 5e-4)]
    for step, (loss_sum, answers, lr) in enumerate(steps, start=1):
        log.step(step, lr, StepCounts(loss_sum, answers, answers * 3, answers * 4))
    log.close()
    (row,) = rows(tmp_path)
    # (30 + 10 + 6) / (10 + 40 + 2): not the last step's 6 / 2 nor the mean of per-step means
    assert row["step"] == 3 and row["loss"] == pytest.approx(46 / 52)
    assert row["lr"] == 4e-4  # the rate step 3 used
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["answer_tokens"] == 56 and summary["steps"] == 4


def test_a_resumed_logger_drops_later_rows_and_continues_the_interval(tmp_path: Path) -> None:
    first = logger(tmp_path, log_every=2)
    first.start_stage("s1", 9, 0)
    for step in range(1, 8):  # rows at 2, 4, 6; a checkpoint after step 5 (window: step 5)
        first.step(step, 1e-3, StepCounts(float(step), 1, 1, 1))
        if step == 5:
            saved = ResumePosition(0, 5, 5, first.totals_now(), first.window)
    first.close()
    assert [r["step"] for r in rows(tmp_path)] == [2, 4, 6]
    position = ResumePosition.from_dict(json.loads(json.dumps(_as_dict(saved))))
    assert position.window == LossWindow(5.0, 1.0)
    resumed = logger(tmp_path, position, log_every=2)
    resumed.start_stage("s1", 9, 5)
    resumed.step(6, 1e-3, StepCounts(6.0, 1, 1, 1))
    resumed.close()
    logged = rows(tmp_path)
    assert [r["step"] for r in logged] == [2, 4, 6]
    assert logged[-1]["loss"] == pytest.approx((5 + 6) / 2)  # same as the uninterrupted row


def _as_dict(position: ResumePosition) -> dict:
    from dataclasses import asdict

    return asdict(position)


def test_trim_metrics_rewrites_atomically(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in (1, 2, 3, 2, 3)))
    assert trim_metrics(path, 1) == 4
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]


def test_resume_position_is_typed_and_complete() -> None:
    with pytest.raises(KeyError):
        ResumePosition.from_dict({"stage": 1, "step": 2})
    position = ResumePosition.from_dict(
        {"stage": 1, "step": 2, "global_step": 9, "totals": {"tokens": 5}}
    )
    assert position.global_step == 9 and position.window == LossWindow()


def test_dead_knob_is_gone_and_eval_every_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_tokens_per_row: unknown key"):
        load_train_config(TINY, [f"data={tmp_path}", "max_tokens_per_row=512"])
    with pytest.raises(ConfigError, match="eval_every: must be >= 1"):
        load_train_config(TINY, [f"data={tmp_path}", "eval_every=0"])
