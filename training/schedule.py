"""Steps per stage and the LR schedule (linear warmup and decay within each stage)."""

from __future__ import annotations

from collections.abc import Callable

from core.typed_config import ConfigError
from training.config import TrainConfig
from training.data import BatchPlan, StageData


def stage_schedule(
    config: TrainConfig, plan: BatchPlan, stages: list[StageData]
) -> list[tuple[int, int]]:
    """(optimizer steps, steps per epoch) for every stage."""
    epochs = config.epochs_per_stage
    if len(epochs) not in (1, len(stages)):
        raise ConfigError(
            "epochs_per_stage",
            [f"give 1 value or {len(stages)} (one per stage), not {len(epochs)}"],
        )
    budget = plan.max_tokens
    too_long = [f"{s.name}: {int(s.lengths.max())}" for s in stages
                if budget and len(s) and int(s.lengths.max()) > budget]  # fmt: skip
    if too_long:
        raise ConfigError(
            "max_tokens_per_micro_batch",
            [f"{budget} is less than the longest row of stage {x} tokens" for x in too_long],
        )
    schedule = []
    for index, stage in enumerate(stages):
        per_epoch = plan.steps_per_epoch(len(stage))
        if per_epoch == 0:
            problem = f"stage {stage.name} has {len(stage)} samples, fewer than one global batch"
            raise ConfigError("data", [f"{problem} ({plan.global_batch})"])
        steps = max(1, round(epochs[index if len(epochs) > 1 else 0] * per_epoch))
        if config.max_steps_per_stage is not None:
            steps = min(steps, config.max_steps_per_stage)
        schedule.append((steps, per_epoch))
    return schedule


def lr_multiplier(schedule: list[tuple[int, int]], warmup_ratio: float) -> Callable[[int], float]:
    """Linear warmup then linear decay to zero, restarting at each stage."""
    bounds = [0]
    for steps, _ in schedule:
        bounds.append(bounds[-1] + steps)

    def multiplier(step: int) -> float:
        stage = next((i for i in range(len(schedule)) if step < bounds[i + 1]), len(schedule) - 1)
        local, total = step - bounds[stage], schedule[stage][0]
        warm = max(1, int(warmup_ratio * total)) if warmup_ratio > 0 else 0
        if local < warm:
            return (local + 1) / warm
        return max(0.0, (total - local) / max(1, total - warm))

    return multiplier
