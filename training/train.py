"""Fine-tune a causal LM on prepared instruction shards with DeepSpeed (ZeRO-3 by default).

Launch (GPU node):
    deepspeed training/train.py --config training/configs/bloomz-1b1-full.yaml data=shards/sup
    deepspeed training/train.py --config training/configs/bloomz-1b1-lora.yaml data=shards/sup
Launch (CPU, 2 ranks, tiny model; what the tests run):
    OMP_NUM_THREADS=1 deepspeed --num_accelerators 2 training/train.py \
        --config training/configs/tiny-cpu.yaml data=runs/demo/shards run_dir=runs/demo/train
    OMP_NUM_THREADS=1 torchrun --nproc_per_node 2 training/train.py --config ... (same keys)
Multi-node: `deepspeed --hostfile HOSTFILE training/train.py ...`, or under Slurm / MPI
with `srun` / `mpirun` setting RANK, WORLD_SIZE, MASTER_ADDR (see README).

The curriculum's stages run in order in one launch, each on its own shards, continuing
from the previous stage's weights (one optimizer; the LR schedule warms up and decays
within each stage). Checkpoints every `save_every` steps and at the end; `resume=auto`
continues from the newest one, in the right stage and at the right batch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.distributed as dist

from core.dist import finish, launched_rank, launched_world_size
from core.typed_config import ConfigError, to_dict
from data_prep.contract.manifest import read_manifest
from training.config import TrainConfig, deepspeed_config, load_train_config
from training.data import BatchPlan, StageData, collate, load_stages
from training.logs import MetricsLogger
from training.preemption import Preemption
from training.runtime import (
    Checkpoints,
    build_engine,
    check_tokenizer,
    export_outputs,
    prepare_model_source,
    stage_schedule,
)


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="YAML training config")
    parser.add_argument("--local_rank", type=int, default=-1, help="set by the deepspeed launcher")
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    args = parser.parse_args(argv)
    try:
        return load_train_config(args.config, args.overrides), args
    except ConfigError as err:  # every rank fails the same way, before any rank starts
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def validate(config: TrainConfig, world: int) -> tuple[list[StageData], BatchPlan, list, dict]:
    """Everything that can be wrong with the inputs, checked before any rank starts."""
    try:
        manifest = read_manifest(config.data)
        check_tokenizer(config, manifest)
        stages = load_stages(config.data)
        plan = BatchPlan(
            config.micro_batch_size,
            config.grad_accum,
            world,
            config.seed,
            config.length_group_batches,
        )
        return stages, plan, stage_schedule(config, plan, stages), deepspeed_config(config, world)
    except ConfigError as err:
        if launched_rank() == 0:
            print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    config, _ = parse_args()
    preemption = Preemption(Path(config.run_dir))  # SIGTERM/SIGUSR1: save, exit, requeue
    world = launched_world_size()
    stages, plan, schedule, ds_config = validate(config, world)
    import deepspeed

    deepspeed.init_distributed(dist_backend="gloo" if not torch.cuda.is_available() else "nccl")
    rank = dist.get_rank()
    run_dir = Path(config.run_dir)
    model_path, tokenizer = prepare_model_source(config, read_manifest(config.data), run_dir, rank)
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(to_dict(config), indent=2) + "\n")
        (run_dir / "deepspeed.json").write_text(json.dumps(ds_config, indent=2) + "\n")
    engine = build_engine(config, ds_config, model_path, schedule)
    checkpoints = Checkpoints(run_dir / "checkpoints", config.keep_last, rank)
    position = checkpoints.resume(engine) if config.resume == "auto" else {}
    logger = MetricsLogger(run_dir, rank, engine, config, world, position.get("totals"))

    global_step = position.get("global_step", 0)
    for index, (stage, (steps, epochs_steps)) in enumerate(zip(stages, schedule, strict=True)):
        if index < position.get("stage", 0):
            continue
        first = position.get("step", 0) if index == position.get("stage", 0) else 0
        logger.start_stage(stage.name, steps, first)
        epoch_plan, epoch = None, -1
        for step in range(first, steps):
            if step // epochs_steps != epoch:
                epoch = step // epochs_steps
                epoch_plan = plan.epoch(stage.lengths, epoch)
            micro_batches = plan.rank_micro_batches(epoch_plan[step % epochs_steps], rank)
            batches = [
                collate([stage[i] for i in ids], tokenizer.pad_token_id) for ids in micro_batches
            ]
            answer_tokens = torch.tensor(
                float(sum(int((b["labels"] != -100).sum()) for b in batches))
            )
            dist.all_reduce(answer_tokens)  # loss is a mean over every answer token of the step
            torch.manual_seed(
                config.seed * 1_000_003 + global_step * 1009 + rank
            )  # dropout, exact on resume
            loss_sum = torch.zeros(())
            for batch in batches:
                token_loss, _ = engine(**batch)
                # DeepSpeed divides by grad_accum and averages over ranks: undo both, then
                # divide by the step's answer tokens across all micro-batches and ranks.
                engine.backward(token_loss * config.grad_accum * world / answer_tokens)
                engine.step()
                loss_sum += token_loss.detach()
            dist.all_reduce(loss_sum)
            global_step += 1
            logger.step(global_step, float(loss_sum / answer_tokens), batches, int(answer_tokens))
            preempted = preemption.agreed()
            if preempted or global_step % config.save_every == 0 or step + 1 == steps:
                where = {"stage": index, "step": step + 1, "global_step": global_step}
                checkpoints.save(engine, {**where, "totals": logger.totals_now()})
            if preempted:
                preemption.leave(rank, global_step, logger.writer)
    logger.close()
    export_outputs(engine, config, model_path, tokenizer, run_dir, rank)
    finish()


if __name__ == "__main__":
    main()
