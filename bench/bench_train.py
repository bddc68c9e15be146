"""Benchmark: real (non-padding) tokens/s of training/train.py against the HF Trainer.

    .venv/bin/python bench/bench_train.py [--steps 380] [--warmup-steps 20] [--rounds 1]

About 2 minutes on an idle 2-core machine (data ~15 s, then one launch per side: ~45 s
for train.py and ~70 s for the Trainer, start-up included); `--rounds N` takes N times
as long for the launches.

Same run, same machine, 2 CPU ranks, OMP_NUM_THREADS=1 per rank on both sides:

1. Data: the MT instructions (both directions, ~12.4k samples) of the FreeDict recipe,
   tokenized with a locally trained 4000-token BPE, built as shards by
   `python -m data_prep build freedict ... curriculum=MT`, all in a temp dir.
2. Ours: `deepspeed --num_accelerators 2 training/train.py --config
   training/configs/tiny-cpu.yaml micro_batch_size=16 grad_accum=1
   max_steps_per_stage=STEPS` (length-grouped batches, LM head at answer positions only).
3. Baseline, the way ALMA, ParroT and LLaMA-Factory train: the same tiny model (the
   random init that step 2 saved), the same samples read back from the shards, the
   same ZeRO-3 JSON (ds_configs/zero3.json, its "auto" values filled by the Trainer),
   the same LR schedule and clipping, trained with `transformers.Trainer` at
   per_device_train_batch_size=16 over randomly ordered batches padded by
   `DataCollatorForSeq2Seq` (labels -100 on the prompt), full-vocabulary logits and the
   model's own loss. Launched by this file: `deepspeed ... bench/bench_train.py
   --trainer-worker ...`. One shim: accelerate 1.x has no backend for DeepSpeed on a
   CPU-only machine and would run each rank alone; it is given gloo, as train.py uses.

Both sides run STEPS optimizer steps of 2 x 16 samples (within one epoch); tokens/s is
measured over the steps after the first `--warmup-steps` (steady state): real tokens
(attention mask 1) summed over both ranks, divided by rank 0's wall time, in intervals
of `--warmup-steps` steps. Printed: tokens/s and padding share of each side and their
ratio (target >= 1.5), also the ratio of the median intervals.

Shared machines: each side also reports how much of the machine's CPU time other
processes took while it ran (/proc/stat less this benchmark's own processes; neighbours
in other containers are invisible to `ps` but not to /proc/stat). The ratio is only
meaningful when that is near 0 for both sides; a warning says when it is not.
`--rounds N` alternates the two sides N times and keeps each side's fastest round.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_build import corpus_dir  # noqa: E402

BIN = Path(sys.executable).parent
MICRO_BATCH = 16
RANKS = 2


# --------------------------------------------------------------------------- data


def prepare_data(scratch: Path, env: dict[str, str]) -> Path:
    """Tokenizer (BPE, 4000) and MT shards in `scratch`; returns the shard folder."""
    from data_prep.tokenizer import train_tokenizer

    corpus = corpus_dir(Path(env["ALIGNINSTRUCT_CACHE"]))
    tokenizer = train_tokenizer(
        [corpus / "train.de", corpus / "train.en"], scratch / "tok", vocab_size=4000
    )
    out = scratch / "shards"
    command = [
        sys.executable, "-m", "data_prep", "build", "freedict", f"corpus.path={corpus}/",
        f"tokenizer={tokenizer}", "curriculum=MT", "--out", str(out),
    ]  # fmt: skip
    run_logged(command, env, scratch / "build.log")
    return out


# --------------------------------------------------------------------------- launching


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_logged(command: list[str], env: dict[str, str], log: Path, timeout: int = 420) -> None:
    with open(log, "w", encoding="utf-8") as out:
        result = subprocess.run(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
            check=False,
        )  # fmt: skip
    if result.returncode:
        tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n{tail}")


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (all processes, all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def launch(script: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """2 CPU ranks under the DeepSpeed launcher on a fresh port; removes the launcher's
    /dev/shm buffers for that port afterwards. Returns (wall seconds, share of the
    machine's CPU time that other processes took meanwhile)."""
    port = free_port()
    command = [
        str(BIN / "deepspeed"), "--num_accelerators", str(RANKS), "--master_port", str(port),
        *script,
    ]  # fmt: skip
    started, busy, ours = time.perf_counter(), busy_cpu_seconds(), children_cpu_seconds()
    try:
        run_logged(command, env, log)
    finally:
        for path in glob.glob(f"/dev/shm/deepspeed_allreduce_buffer_{os.getuid()}_*_{port}_*"):
            Path(path).unlink(missing_ok=True)
    wall = time.perf_counter() - started
    foreign = (busy_cpu_seconds() - busy) - (children_cpu_seconds() - ours)
    return wall, max(0.0, foreign) / (wall * (os.cpu_count() or 1))


# --------------------------------------------------------------------------- ours


def ours_steady(run: Path, data: Path, warmup: int) -> dict[str, float]:
    """Steady-state tokens/s of train.py from metrics.jsonl (one line per `warmup` steps).

    A line holds only the interval's rate; its real and padded tokens are recomputed
    from the same BatchPlan train.py used, so seconds = tokens / rate, exactly."""
    from training.data import BatchPlan, load_stages

    config = json.loads((run / "config.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    stage = load_stages(data)[0]
    plan = BatchPlan(
        config["micro_batch_size"], config["grad_accum"], RANKS, config["seed"],
        config["length_group_batches"],
    )  # fmt: skip
    per_epoch = plan.steps_per_epoch(len(stage))
    real, padded, epoch, epoch_plan = [], [], -1, []
    for step in range(summary["steps"]):
        if step // per_epoch != epoch:
            epoch = step // per_epoch
            epoch_plan = plan.epoch(stage.lengths, epoch)
        micro = [stage.lengths[ids] for ids in epoch_plan[step % per_epoch]]
        real.append(int(sum(m.sum() for m in micro)))
        padded.append(int(sum(len(m) * m.max() for m in micro)))
    if sum(real) != summary["tokens"] or sum(padded) != summary["padded_tokens"]:
        raise RuntimeError("recomputed batches differ from train.py's summary.json")
    intervals = []
    for line in lines[1:]:  # the first interval is the warm-up
        window = slice(line["step"] - warmup, line["step"])
        tokens = sum(real[window])
        intervals.append((tokens, sum(padded[window]), tokens / line["tokens_per_s"]))
    losses = {"loss_first": lines[0]["loss"], "loss_last": lines[-1]["loss"]}
    return {**steady_rates(intervals), **losses}


def steady_rates(intervals: list[tuple[float, float, float]]) -> dict[str, float]:
    """(real tokens, padded tokens, seconds) per log interval -> the steady-state figures:
    tokens/s over all intervals, and the median interval's rate (robust to bursts of
    other load on a shared machine)."""
    tokens, padded, seconds = (sum(column) for column in zip(*intervals, strict=True))
    return {
        "tokens_per_s": tokens / seconds,
        "median_tokens_per_s": statistics.median(t / s for t, _, s in intervals),
        "padding_share": 1 - tokens / padded,
        "steady_seconds": seconds,
        "tokens": tokens,
    }


# --------------------------------------------------------------------------- baseline


def cpu_deepspeed_for_accelerate() -> None:
    """accelerate 1.x picks a distributed backend only for accelerators (nccl, xccl, ...):
    under the DeepSpeed launcher on a CPU-only machine it reports one process, so the
    Trainer would neither shard batches nor see world size 2. Pick gloo there, as
    train.py does; the rest (DeepSpeed engine, ZeRO-3, data sharding) is the Trainer's own.
    """
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType

    original = PartialState._prepare_backend

    def prepare_backend(self, cpu=False, sagemaker_dp=False, backend=None):
        chosen, kind = original(self, cpu, sagemaker_dp, backend)
        if kind == DistributedType.NO and int(os.environ.get("LOCAL_RANK", -1)) != -1:
            return "gloo", DistributedType.MULTI_CPU
        return chosen, kind

    PartialState._prepare_backend = prepare_backend


def trainer_worker(args: argparse.Namespace) -> None:
    """One rank of the baseline: HF Trainer + ZeRO-3 over padded, randomly ordered batches."""
    import torch
    import torch.distributed as dist
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from training.data import IGNORE, load_stages

    cpu_deepspeed_for_accelerate()
    ds = json.loads((ROOT / "ds_configs" / "zero3.json").read_text())  # Trainer fills "auto"
    targs = TrainingArguments(
        output_dir=str(args.out.parent / "trainer-out"),
        deepspeed=ds,  # before from_pretrained: the model is partitioned as it loads
        per_device_train_batch_size=MICRO_BATCH,
        gradient_accumulation_steps=1,
        max_steps=args.steps,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio,
        lr_scheduler_type="linear",
        max_grad_norm=args.grad_clip,
        seed=args.seed,
        logging_steps=args.warmup_steps,
        save_strategy="no",
        report_to="none",
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32)
    stage = load_stages(args.data)[0]
    features = []
    for index in range(len(stage)):
        ids, mask = stage[index]
        features.append({
            "input_ids": ids.tolist(),
            "attention_mask": [1] * len(ids),
            "labels": [int(t) if m else IGNORE for t, m in zip(ids, mask, strict=True)],
        })  # fmt: skip
    counts = {"real": 0, "padded": 0}
    marks: list[tuple[float, int, int]] = []  # every `warmup_steps` steps

    class CountingTrainer(Trainer):
        def compute_loss(self, model, inputs, *rest, **kwargs):
            counts["real"] += int(inputs["attention_mask"].sum())
            counts["padded"] += inputs["attention_mask"].numel()
            return super().compute_loss(model, inputs, *rest, **kwargs)

    class Clock(TrainerCallback):
        def on_step_end(self, _args, state, control, **kwargs):
            if state.global_step % args.warmup_steps == 0:
                marks.append((time.perf_counter(), counts["real"], counts["padded"]))

    trainer = CountingTrainer(
        model=model,
        args=targs,
        train_dataset=features,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE),
        callbacks=[Clock()],
    )
    result = trainer.train()
    tokens = torch.tensor(
        [[r1 - r0, p1 - p0] for (_, r0, p0), (_, r1, p1) in itertools.pairwise(marks)]
        + [[counts["real"], counts["padded"]]],
        dtype=torch.float64,
    )
    dist.all_reduce(tokens)  # real and padded tokens of both ranks; times are rank 0's
    if dist.get_rank() == 0:
        seconds = [t1 - t0 for (t0, *_), (t1, *_) in itertools.pairwise(marks)]
        intervals = [
            (float(r), float(p), s) for (r, p), s in zip(tokens[:-1], seconds, strict=True)
        ]
        summary = {
            **steady_rates(intervals),
            "world_size": targs.world_size,
            "train_batch_size": targs.hf_deepspeed_config.config["train_batch_size"],
            "all_padding_share": 1 - float(tokens[-1, 0] / tokens[-1, 1]),
            "train_loss": result.training_loss,
            "loss_last": next(
                (x["loss"] for x in reversed(trainer.state.log_history) if "loss" in x), None
            ),
        }
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    dist.barrier()
    dist.destroy_process_group()
    os._exit(0)  # torch 2.13's gloo can abort at interpreter exit (FIELD-NOTES)


def run_ours(
    args: argparse.Namespace, data: Path, scratch: Path, env: dict[str, str], round_: int
) -> dict:
    run = scratch / f"ours-{round_}"
    launch_s, busy = launch(
        [
            "training/train.py", "--config", "training/configs/tiny-cpu.yaml",
            f"data={data}", f"run_dir={run}", f"micro_batch_size={MICRO_BATCH}",
            "grad_accum=1", f"max_steps_per_stage={args.steps}",
            f"log_every={args.warmup_steps}", f"save_every={10**9}",
        ],
        env, scratch / f"ours-{round_}.log",
    )  # fmt: skip
    row = ours_steady(run, data, args.warmup_steps)
    losses = f"logged loss {row['loss_first']:.3f} -> {row['loss_last']:.3f}"
    model = scratch / "model"
    if not model.exists():
        shutil.copytree(run / "tiny-model", model)  # the random init, for the Trainer
        shutil.copy(run / "config.json", scratch / "train-config.json")
    return {**row, "launch_s": launch_s, "others": busy, "losses": losses}


def run_trainer(
    args: argparse.Namespace, data: Path, scratch: Path, env: dict[str, str], round_: int
) -> dict:
    config = json.loads((scratch / "train-config.json").read_text())
    out = scratch / f"trainer-{round_}.json"
    launch_s, busy = launch(
        [
            str(Path(__file__).resolve()), "--trainer-worker", "--data", str(data),
            "--model", str(scratch / "model"), "--out", str(out), "--steps", str(args.steps),
            "--warmup-steps", str(args.warmup_steps), "--lr", str(config["lr"]),
            "--weight-decay", str(config["weight_decay"]),
            "--warmup-ratio", str(config["warmup_ratio"]),
            "--grad-clip", str(config["grad_clip"]), "--seed", str(config["seed"]),
        ],
        env, scratch / f"trainer-{round_}.log",
    )  # fmt: skip
    row = json.loads(out.read_text())
    if (row["world_size"], row["train_batch_size"]) != (RANKS, RANKS * MICRO_BATCH):
        raise RuntimeError(f"the Trainer did not run data-parallel on {RANKS} ranks: {row}")
    losses = f"last logged loss {row['loss_last']:.3f}"
    return {**row, "launch_s": launch_s, "others": busy, "losses": losses}


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--steps", type=int, default=380, help="optimizer steps, each side (<= 387, one epoch)"
    )
    parser.add_argument("--warmup-steps", type=int, default=20, help="untimed first steps")
    parser.add_argument("--rounds", type=int, default=1, help="alternate, keep each side's best")
    parser.add_argument("--keep", help="keep the work folder here (default: a removed temp dir)")
    worker = parser.add_argument_group("internal (the Trainer ranks)")
    worker.add_argument("--trainer-worker", action="store_true")
    worker.add_argument("--local_rank", type=int, default=-1, help="set by the launcher")
    for name in ("--data", "--model", "--out"):
        worker.add_argument(name, type=Path)
    for name in ("--lr", "--weight-decay", "--warmup-ratio", "--grad-clip"):
        worker.add_argument(name, type=float)
    worker.add_argument("--seed", type=int)
    args = parser.parse_args()
    if args.steps % args.warmup_steps or args.steps <= args.warmup_steps:
        parser.error("--steps must be a multiple of --warmup-steps, and larger")
    if args.trainer_worker:
        trainer_worker(args)
        return
    os.environ["OMP_NUM_THREADS"] = "1"  # this process too (tokenizer training, checks)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        scratch = Path(args.keep or tmp)
        scratch.mkdir(parents=True, exist_ok=True)
        env = dict(
            os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
            ALIGNINSTRUCT_CACHE=str(scratch / "cache"),
        )  # fmt: skip
        started = time.perf_counter()
        data = prepare_data(scratch, env)
        samples = json.loads((data / "manifest.json").read_text())["stages"][0]["samples"]
        print(f"data: {samples} MT samples (de-en + en-de), {time.perf_counter() - started:.0f} s")

        best: dict[str, dict] = {}
        for round_ in range(1, args.rounds + 1):
            for name, side in (("train.py", run_ours), ("Trainer", run_trainer)):
                row = side(args, data, scratch, env, round_)
                print(
                    f"round {round_} {name:<8}: {row['tokens_per_s']:6.0f} real tokens/s "
                    f"(median {args.warmup_steps}-step interval {row['median_tokens_per_s']:.0f}); "
                    f"launch "
                    f"{row['launch_s']:.0f} s; other processes took {row['others']:.0%} of the "
                    f"CPUs; {row['losses']}"
                )
                if row["tokens_per_s"] > best.get(name, {}).get("tokens_per_s", 0):
                    best[name] = row
        ours, base = best["train.py"], best["Trainer"]

        steady = f"steps {args.warmup_steps + 1}-{args.steps}"
        print(f"\n2 CPU ranks, ZeRO-3, fp32, OMP_NUM_THREADS=1, micro-batch 16, {steady}:")
        if args.rounds > 1:
            print(f"(each side's best of {args.rounds} rounds)")
        for name, row in (("train.py", ours), ("HF Trainer (padded)", base)):
            print(
                f"  {name:<20} {row['tokens_per_s']:8.0f} real tokens/s   padding "
                f"{row['padding_share']:6.1%}   ({row['tokens']:.0f} tokens in "
                f"{row['steady_seconds']:.1f} s; other processes took {row['others']:.0%} "
                "of the CPUs)"
            )
        ratio = ours["tokens_per_s"] / base["tokens_per_s"]
        median = ours["median_tokens_per_s"] / base["median_tokens_per_s"]
        print(f"ratio train.py / Trainer: {ratio:.2f}x  (target >= 1.5)")
        print(f"ratio of the median {args.warmup_steps}-step intervals: {median:.2f}x")
        if max(ours["others"], base["others"]) > 0.1:
            print("warning: other processes competed for the CPUs; rerun on an idle machine")
        print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
