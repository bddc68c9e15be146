"""Fine-tune a causal LM on prepared instruction shards with DeepSpeed (ZeRO-3 by default).

Launch (GPU node):
    deepspeed training/train.py --config training/configs/bloomz-1b1-full.yaml data=shards/sup
    deepspeed training/train.py --config training/configs/bloomz-1b1-lora.yaml data=shards/sup
Launch (CPU, 2 ranks, tiny model; what the tests run):
    OMP_NUM_THREADS=1 deepspeed --num_accelerators 2 training/train.py \
        --config training/configs/tiny-cpu.yaml data=runs/demo/shards run_dir=runs/demo/train
    OMP_NUM_THREADS=1 torchrun --nproc_per_node 2 training/train.py --config ... (same keys)
Multi-node: `deepspeed --hostfile HOSTFILE training/train.py ...`, or under Slurm / MPI
with `srun` / `mpirun` setting RANK, WORLD_SIZE, MASTER_ADDR (see docs/clusters.md).

The curriculum's stages run in order in one launch, each on its own shards, continuing
from the previous stage's weights (one optimizer; the LR schedule warms up and decays
within each stage). Checkpoints every `save_every` steps and at the end; `resume=auto`
continues from the newest one that loads, in the right stage and at the right batch.

Reads as setup (inputs checked before any rank starts, then the engine and the resume
position) -> stages -> steps; checkpoints, exports, the schedule and the dev loss live
in modules of their own.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.distributed as dist

from core.devices import collective_device, default_backend
from core.dist import (
    finish,
    launched_rank,
    launched_world_size,
    release_shm_names,
    remove_stale_shm_buffers,
)
from core.hub import prefer_offline
from core.lock import LockError
from core.typed_config import ConfigError, to_dict
from data_prep.contract.manifest import read_manifest
from training.checkpoints import CheckpointError, Checkpoints, ResumePosition
from training.checks import input_problems, inputs_source, shards_problems
from training.config import TrainConfig, deepspeed_config, load_train_config
from training.data import IGNORE, BatchPlan, StageData, collate, load_stages
from training.devloss import DevLoss
from training.engine import build_engine, prepare_model_source
from training.export import export_outputs, prompt_record
from training.flops import StepFlops
from training.logs import MetricsLogger, StepCounts
from training.model import count_parameters, hf_model
from training.preemption import Preemption
from training.resume_config import config_changes, hold_run_dir, record_changes, will_resume
from training.schedule import stage_schedule


def fail(err: ConfigError | LockError) -> NoReturn:
    """Config errors are the same on every rank: rank 0 says it once."""
    if launched_rank() == 0:
        print(f"error: {err}", file=sys.stderr)
    sys.exit(2)


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="YAML training config")
    parser.add_argument("--local_rank", type=int, default=-1, help="set by the deepspeed launcher")
    parser.add_argument(
        "--allow-config-change", action="store_true",
        help="resume although settings that change the run differ from the saved config.json",
    )  # fmt: skip
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    args = parser.parse_args(argv)
    try:
        return load_train_config(args.config, args.overrides), args
    except ConfigError as err:
        fail(err)


@dataclass(frozen=True)
class Inputs:
    """What the checks produced: the data, the batch plan, the schedule, the DeepSpeed JSON."""

    manifest: dict[str, Any]
    stages: list[StageData]
    dev: StageData | None
    plan: BatchPlan
    schedule: list[tuple[int, int]]
    ds_config: dict[str, Any]


def validate(config: TrainConfig, world: int) -> Inputs:
    """Everything that can be wrong with the inputs, checked before any rank starts."""
    try:
        if not config.model.tiny:
            prefer_offline()  # an unreachable hub fails at once, not after a minute of retries
        if problems := shards_problems(config):
            raise ConfigError(config.data, problems)
        manifest = read_manifest(config.data)
        problems = input_problems(config, manifest) + config.batch_problems(world)
        if problems:
            raise ConfigError(inputs_source(config, problems), problems)
        stages = load_stages(config.data)
        dev = StageData(Path(config.data) / "dev", manifest["dev"]) if manifest.get("dev") else None
        plan = BatchPlan(
            config.micro_batch_size,
            config.grad_accum_for(world),
            world,
            config.seed,
            config.length_group_batches,
            config.max_tokens_per_micro_batch,
        )
        schedule = stage_schedule(config, plan, stages)
        return Inputs(manifest, stages, dev, plan, schedule, deepspeed_config(config, world))
    except ConfigError as err:
        fail(err)


def token_counts(batches: list[dict[str, torch.Tensor]], flops: StepFlops) -> torch.Tensor:
    """Answer, real and padded tokens and the FLOPs of this rank's micro-batches (to sum
    over ranks), on the collective device."""
    answers = sum(float((b["labels"] != IGNORE).sum()) for b in batches)
    lengths = [int(n) for b in batches for n in b["attention_mask"].sum(1)]
    values = [
        answers,
        sum(float(b["attention_mask"].sum()) for b in batches),
        sum(float(b["input_ids"].numel()) for b in batches),
        flops(lengths, int(answers)),
    ]
    return torch.tensor(values, dtype=torch.float64, device=collective_device())


def optimizer_step(
    engine: Any, batches: list[dict[str, torch.Tensor]], flops: StepFlops, world: int
) -> tuple[torch.Tensor, float]:
    """Forward, backward and step over this rank's micro-batches. Returns the step's token
    counts and loss sum over all ranks, each all-reduced on the collective device and read
    back once (the loss is a mean over every answer token of the step)."""
    counts = token_counts(batches, flops)
    dist.all_reduce(counts)
    counts = counts.cpu()
    answer_tokens = float(counts[0])
    loss_sum = torch.zeros((), dtype=torch.float64, device=collective_device())
    for i, batch in enumerate(batches):
        # The step's micro-batch count varies under a token budget (the same on every
        # rank): its last one is the accumulation boundary, not a counter.
        engine.set_gradient_accumulation_boundary(i + 1 == len(batches))
        token_loss, _ = engine(**{k: v.to(engine.device) for k, v in batch.items()})
        # DeepSpeed averages gradients over ranks: undo it, then divide by the step's
        # answer tokens across all micro-batches and ranks.
        engine.backward(token_loss * world / answer_tokens, scale_wrt_gas=False)
        engine.step()
        loss_sum += token_loss.detach().to(loss_sum.device, torch.float64)  # no sync on GPU
    dist.all_reduce(loss_sum)
    return counts, float(loss_sum)


def grad_norm(engine: Any) -> float | None:
    """The global gradient norm of the last optimizer step (before clipping)."""
    norm = engine.get_global_grad_norm()
    return None if norm is None else float(norm)


def train(
    config: TrainConfig,
    inputs: Inputs,
    rank: int,
    world: int,
    preemption: Preemption,
    changes: dict[str, Any] | None = None,
) -> None:
    run_dir = Path(config.run_dir)
    model_path, tokenizer = prepare_model_source(config, inputs.manifest, run_dir, rank)
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not will_resume(config):  # a resume rewrites it after the load, with the record
            (run_dir / "config.json").write_text(json.dumps(to_dict(config), indent=2) + "\n")
        (run_dir / "deepspeed.json").write_text(json.dumps(inputs.ds_config, indent=2) + "\n")
    engine = build_engine(config, inputs.ds_config, model_path, inputs.schedule)
    checkpoints = Checkpoints(run_dir / "checkpoints", config.keep_last, rank, world)
    resumed = checkpoints.resume(engine) if config.resume == "auto" else None
    start = resumed or ResumePosition()
    if rank == 0 and resumed:
        record_changes(config, changes or {}, start.global_step)
    parameters = count_parameters(engine.module.lm)
    logger = MetricsLogger(run_dir, rank, config, world, parameters, resumed)
    dev = DevLoss(inputs.dev, config.dev_rows(), rank, world) if inputs.dev else None
    plan, pad_id = inputs.plan, tokenizer.pad_token_id
    flops = StepFlops.of(engine.module, hf_model(engine.module.lm).config)

    global_step = start.global_step
    stages = zip(inputs.stages, inputs.schedule, strict=True)
    for index, (stage, (steps, epoch_steps)) in enumerate(stages):
        if index < start.stage:
            continue
        first = start.step if index == start.stage else 0
        logger.start_stage(stage.name, steps, first)
        epoch_plan, epoch = [], -1
        for step in range(first, steps):
            if step // epoch_steps != epoch:
                epoch = step // epoch_steps
                epoch_plan = plan.epoch(stage.lengths, epoch)
            micro_batches = plan.rank_micro_batches(epoch_plan[step % epoch_steps], rank)
            batches = [collate([stage[i] for i in ids], pad_id) for ids in micro_batches]
            lr = engine.get_lr()[0]  # the rate this step uses (the scheduler moves in step())
            torch.manual_seed(config.seed * 1_000_003 + global_step * 1009 + rank)  # dropout
            counts, loss = optimizer_step(engine, batches, flops, world)
            global_step += 1
            logger.step(
                global_step,
                lr,
                StepCounts(loss, *map(int, counts[:3]), float(counts[3]), grad_norm(engine)),
            )
            stage_end = step + 1 == steps
            if dev and (stage_end or (config.eval_every and global_step % config.eval_every == 0)):
                logger.dev(global_step, *dev(engine, pad_id))
            preempted = preemption.agreed()  # a collective: every rank, every step
            if preempted or global_step % config.save_every == 0 or stage_end:
                where = ResumePosition(
                    index, step + 1, global_step, logger.totals_now(), logger.window
                )
                checkpoints.save(engine, where)
            if preempted:
                preemption.leave(rank, global_step, logger.writer)
    logger.close()
    prompts = prompt_record(inputs.manifest)  # eval refuses to decode them otherwise
    export_outputs(engine, config, model_path, tokenizer, run_dir, rank, prompts)


def main() -> None:
    config, args = parse_args()
    try:
        hold_run_dir(config, launched_rank())  # before anything is written in run_dir
        changes = config_changes(config, args.allow_config_change)
    except (ConfigError, LockError) as err:
        fail(err)
    preemption = Preemption(Path(config.run_dir))  # SIGTERM/SIGUSR1: save, exit, requeue
    world = launched_world_size()
    inputs = validate(config, world)
    remove_stale_shm_buffers()  # what killed runs of this user left in /dev/shm
    import deepspeed

    deepspeed.init_distributed(dist_backend=default_backend())
    release_shm_names()  # every rank has mapped every buffer: no exit path can leave them
    rank = dist.get_rank()
    try:
        train(config, inputs, rank, world, preemption, changes)
    except CheckpointError as err:  # every rank raises it, after agreeing
        if rank == 0:
            # The progress bar holds the line (no newline until it ends): start a new one.
            print(f"\nerror: {err}", file=sys.stderr, flush=True)
        finish(1)
    finish()


if __name__ == "__main__":
    main()
