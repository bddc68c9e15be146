"""Benchmark: real (non-padding) tokens/s of training/train.py against the HF Trainer,
with quality parity on held-out data.

    .venv/bin/python bench/bench_train.py [--steps 300] [--steps-5m 60] [--rounds 1]

Three launches per model size (how long they take: bench/README.md); `--rounds N`
repeats the launches N times. Works from a fresh clone:
the FreeDict corpus is built from its Debian package (`apt-get download`) under
$ALIGNINSTRUCT_CACHE, else in a temp dir.

Same run, same machine, 2 CPU ranks, OMP_NUM_THREADS=1 per rank on every side:

1. Data: the MT instructions (both directions) of the FreeDict recipe's train split
   (~12.4k samples) and of its dev split (~1k samples, the held-out set), tokenized
   with a locally trained 4000-token BPE, built as shards by `python -m data_prep build
   freedict ... curriculum=MT [split=dev]`, all in a temp dir.
2. Two model sizes: the tiny random BLOOM of training/configs/tiny-cpu.yaml (hidden 64,
   2 layers, 0.36M parameters) and a ~5.0M one (hidden 256, 5 layers) where compute
   dominates the step.
3. Ours: `deepspeed --num_accelerators 2 training/train.py --config
   training/configs/tiny-cpu.yaml micro_batch_size=16 grad_accum=1
   max_steps_per_stage=STEPS model.tiny_hidden=... model.tiny_layers=...`
   (length-grouped batches, LM head at answer positions only, fused GELU).
4. The peer, `transformers.Trainer`, the way ALMA, ParroT and LLaMA-Factory train: the
   same model (the random init that step 3 saved), the same samples read back from the
   shards, the same ZeRO-3 JSON (ds_configs/zero3_cpu.json, "auto" values filled by the
   Trainer), the same LR schedule and clipping, per_device_train_batch_size=16, padded by
   `DataCollatorForSeq2Seq` (labels -100 on the prompt), full-vocabulary logits, the
   model's own loss (token mean across devices). Two rows:
   - `group_by_length=True` (its best setting, LengthGroupedSampler): the baseline;
   - randomly ordered batches (its default): a second row.
   Launched by this file: `deepspeed ... bench/bench_train.py --trainer-worker ...`.
   One shim: accelerate 1.x has no backend for DeepSpeed on a CPU-only machine and would
   run each rank alone; it is given gloo, as train.py uses.
5. Quality: every side's final weights (train.py's export/model, the Trainer's
   save_model) score the same dev set in this process with the same code: loss per
   answer token (summed cross-entropy over the answers / answer tokens). Parity: ours no
   worse than the grouped Trainer's by more than 1%.

Each side runs STEPS optimizer steps of 2 x 16 samples (within one epoch); tokens/s is
measured over the steps after the first tenth (steady state), in intervals of a tenth:
real tokens (attention mask 1) summed over both ranks, divided by rank 0's wall time.
Printed per model: tokens/s, padding share and dev loss of each side, the ratios
against the grouped Trainer (target >= 1.5 at parity) and the random-order one.

Shared machines: each side also reports how much of the machine's CPU time other
processes took while it ran (/proc/stat less this benchmark's own processes). The ratio
is only meaningful when that is near 0 for all sides; a warning says when it is not.
`--rounds N` alternates the sides N times and keeps each side's fastest round.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_build import corpus_dir  # noqa: E402
from bench.cpu_load import LoadMeter  # noqa: E402

BIN = Path(sys.executable).parent
MICRO_BATCH = 16
RANKS = 2
INTERVALS = 10  # timing intervals per run; the first is the untimed warm-up


@dataclass(frozen=True)
class ModelSize:
    name: str
    hidden: int
    layers: int
    heads: int

    def overrides(self) -> list[str]:
        return [
            f"model.tiny_hidden={self.hidden}",
            f"model.tiny_layers={self.layers}",
            f"model.tiny_heads={self.heads}",
        ]


SIZES = {"tiny": ModelSize("tiny", 64, 2, 4), "5m": ModelSize("~5.0M", 256, 5, 4)}
SIDES = ("train.py", "Trainer grouped", "Trainer random")


# --------------------------------------------------------------------------- data


def prepare_data(scratch: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """Tokenizer (BPE, 4000), MT shards of the train split and of the dev split in
    `scratch`; returns (train shards, dev shards)."""
    from data_prep.tokenizer import train_tokenizer

    corpus = corpus_dir(Path(env["ALIGNINSTRUCT_CACHE"]))
    tokenizer = train_tokenizer(
        [corpus / "train.de", corpus / "train.en"], scratch / "tok", vocab_size=4000
    )
    folders = []
    for split in ("train", "dev"):
        out = scratch / f"shards-{split}"
        command = [
            sys.executable, "-m", "data_prep", "build", "freedict", f"corpus.path={corpus}/",
            f"tokenizer={tokenizer}", "curriculum=MT", f"split={split}", "--out", str(out),
        ]  # fmt: skip
        run_logged(command, env, scratch / f"build-{split}.log")
        folders.append(out)
    return folders[0], folders[1]


def dev_loss(model_dir: Path, dev: Path, pad_id: int) -> float:
    """Loss per answer token of a saved model on the dev shards (one process, no ZeRO),
    the same code for every side."""
    import torch
    from transformers import AutoModelForCausalLM

    from training.data import collate, load_stages
    from training.model import AnswerOnlyLM

    stage = load_stages(dev)[0]
    module = AnswerOnlyLM(AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32))
    order = sorted(range(len(stage)), key=lambda i: int(stage.lengths[i]))
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(order), 64):
            batch = collate([stage[i] for i in order[start : start + 64]], pad_id)
            loss, tokens = module.eval()(**batch)
            total, count = total + float(loss), count + int(tokens)
    return total / count


# --------------------------------------------------------------------------- launching


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_logged(command: list[str], env: dict[str, str], log: Path, timeout: int = 1800) -> None:
    with open(log, "w", encoding="utf-8") as out:
        result = subprocess.run(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
            check=False,
        )  # fmt: skip
    if result.returncode:
        tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n{tail}")


def launch(script: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """2 CPU ranks under the DeepSpeed launcher on a fresh port; removes the launcher's
    /dev/shm buffers for that port afterwards. Returns (wall seconds, share of the
    machine's CPU time that other processes took meanwhile)."""
    port = free_port()
    command = [
        str(BIN / "deepspeed"), "--num_accelerators", str(RANKS), "--master_port", str(port),
        *script,
    ]  # fmt: skip
    meter = LoadMeter.start()
    try:
        run_logged(command, env, log)
    finally:
        for path in glob.glob(f"/dev/shm/deepspeed_allreduce_buffer_{os.getuid()}_*_{port}_*"):
            Path(path).unlink(missing_ok=True)
    return meter.stop()


# --------------------------------------------------------------------------- ours


def ours_steady(run: Path, data: Path, interval: int) -> dict[str, float]:
    """Steady-state tokens/s of train.py from metrics.jsonl (one line per `interval`
    steps). A line holds only the interval's rate; its real and padded tokens are
    recomputed from the same BatchPlan train.py used, so seconds = tokens / rate."""
    from training.data import BatchPlan, load_stages

    config = json.loads((run / "config.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    lines = [x for x in lines if "tokens_per_s" in x]
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
        window = slice(line["step"] - interval, line["step"])
        tokens = sum(real[window])
        intervals.append((tokens, sum(padded[window]), tokens / line["tokens_per_s"]))
    return steady_rates(intervals)


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


# --------------------------------------------------------------------------- the peer


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


def trainer_features(data: Path) -> list[dict[str, list[int]]]:
    """The shards' samples as the Trainer's dataset: labels -100 outside the answer."""
    from training.data import IGNORE, load_stages

    stage = load_stages(data)[0]
    features = []
    for index in range(len(stage)):
        ids, mask = stage[index]
        features.append({
            "input_ids": ids.tolist(),
            "attention_mask": [1] * len(ids),
            "labels": [int(t) if m else IGNORE for t, m in zip(ids, mask, strict=True)],
        })  # fmt: skip
    return features


def trainer_arguments(args: argparse.Namespace):
    from transformers import TrainingArguments

    ds = json.loads((ROOT / "ds_configs" / "zero3_cpu.json").read_text())  # Trainer fills "auto"
    return TrainingArguments(
        output_dir=str(args.out.parent / "trainer-out"),
        deepspeed=ds,  # before from_pretrained: the model is partitioned as it loads
        per_device_train_batch_size=MICRO_BATCH,
        gradient_accumulation_steps=1,
        group_by_length=args.group_by_length,
        max_steps=args.steps,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio,
        lr_scheduler_type="linear",
        max_grad_norm=args.grad_clip,
        seed=args.seed,
        logging_steps=args.interval,
        save_strategy="no",
        report_to="none",
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )


def trainer_worker(args: argparse.Namespace) -> None:
    """One rank of the peer: HF Trainer + ZeRO-3 over padded batches; saves its final
    weights to `--save` and its timing to `--out`."""
    import torch
    import torch.distributed as dist
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainerCallback,
    )

    from training.data import IGNORE

    cpu_deepspeed_for_accelerate()
    targs = trainer_arguments(args)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    counts = {"real": 0, "padded": 0}
    marks: list[tuple[float, int, int]] = []  # every `interval` steps

    class CountingTrainer(Trainer):
        def compute_loss(self, model, inputs, *rest, **kwargs):
            counts["real"] += int(inputs["attention_mask"].sum())
            counts["padded"] += inputs["attention_mask"].numel()
            return super().compute_loss(model, inputs, *rest, **kwargs)

    class Clock(TrainerCallback):
        def on_step_end(self, _args, state, control, **kwargs):
            if state.global_step % args.interval == 0:
                marks.append((time.perf_counter(), counts["real"], counts["padded"]))

    trainer = CountingTrainer(
        model=model,
        args=targs,
        train_dataset=trainer_features(args.data),
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE),
        callbacks=[Clock()],
    )
    trainer.train()
    trainer.save_model(str(args.save))  # ZeRO-3: gathered on rank 0 (all ranks call it)
    tokens = torch.tensor(
        [[r1 - r0, p1 - p0] for (_, r0, p0), (_, r1, p1) in itertools.pairwise(marks)],
        dtype=torch.float64,
    )
    dist.all_reduce(tokens)  # real and padded tokens of both ranks; times are rank 0's
    if dist.get_rank() == 0:
        seconds = [t1 - t0 for (t0, *_), (t1, *_) in itertools.pairwise(marks)]
        intervals = [(float(r), float(p), s) for (r, p), s in zip(tokens, seconds, strict=True)]
        summary = {
            **steady_rates(intervals),
            "world_size": targs.world_size,
            "train_batch_size": targs.hf_deepspeed_config.config["train_batch_size"],
        }
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    dist.barrier()
    dist.destroy_process_group()
    os._exit(0)  # torch 2.13's gloo can abort at interpreter exit (as core.dist.finish)


# --------------------------------------------------------------------------- one side


@dataclass
class Job:
    """One model size's runs: data, scratch, steps, interval."""

    size: ModelSize
    key: str
    train: Path
    scratch: Path
    steps: int
    env: dict[str, str]

    @property
    def interval(self) -> int:
        return self.steps // INTERVALS

    @property
    def init(self) -> Path:
        return self.scratch / f"init-{self.key}"


def run_ours(job: Job, round_: int) -> tuple[dict, Path]:
    run = job.scratch / f"ours-{job.key}-{round_}"
    launch_s, busy = launch(
        [
            "training/train.py", "--config", "training/configs/tiny-cpu.yaml",
            f"data={job.train}", f"run_dir={run}", f"micro_batch_size={MICRO_BATCH}",
            "grad_accum=1", f"max_steps_per_stage={job.steps}",
            f"log_every={job.interval}", f"save_every={10**9}", *job.size.overrides(),
        ],
        job.env, job.scratch / f"ours-{job.key}-{round_}.log",
    )  # fmt: skip
    row = ours_steady(run, job.train, job.interval)
    if not job.init.exists():
        shutil.copytree(run / "tiny-model", job.init)  # the random init, for the Trainer
        shutil.copy(run / "config.json", job.scratch / f"train-config-{job.key}.json")
    return {**row, "launch_s": launch_s, "others": busy}, run / "export" / "model"


def run_trainer(job: Job, round_: int, grouped: bool) -> tuple[dict, Path]:
    config = json.loads((job.scratch / f"train-config-{job.key}.json").read_text())
    name = f"trainer-{'grouped' if grouped else 'random'}-{job.key}-{round_}"
    out, save = job.scratch / f"{name}.json", job.scratch / f"{name}-model"
    launch_s, busy = launch(
        [
            str(Path(__file__).resolve()), "--trainer-worker", "--data", str(job.train),
            "--model", str(job.init), "--out", str(out), "--save", str(save),
            "--steps", str(job.steps), "--interval", str(job.interval),
            "--lr", str(config["lr"]), "--weight-decay", str(config["weight_decay"]),
            "--warmup-ratio", str(config["warmup_ratio"]),
            "--grad-clip", str(config["grad_clip"]), "--seed", str(config["seed"]),
            *(["--group-by-length"] if grouped else []),
        ],
        job.env, job.scratch / f"{name}.log",
    )  # fmt: skip
    row = json.loads(out.read_text())
    if (row["world_size"], row["train_batch_size"]) != (RANKS, RANKS * MICRO_BATCH):
        raise RuntimeError(f"the Trainer did not run data-parallel on {RANKS} ranks: {row}")
    return {**row, "launch_s": launch_s, "others": busy}, save


def run_side(job: Job, side: str, round_: int) -> tuple[dict, Path]:
    if side == "train.py":
        return run_ours(job, round_)
    return run_trainer(job, round_, grouped=side == "Trainer grouped")


# --------------------------------------------------------------------------- report


def report(job: Job, best: dict[str, dict], rounds: int) -> None:
    ours, grouped, random_ = (best[side] for side in SIDES)
    steady = f"steps {job.interval + 1}-{job.steps}"
    print(
        f"\n{job.size.name} BLOOM (hidden {job.size.hidden}, {job.size.layers} layers), 2 CPU "
        f"ranks, ZeRO-3, fp32, OMP_NUM_THREADS=1, micro-batch 16, {steady}"
        + (f", each side's best of {rounds} rounds" if rounds > 1 else "")
        + ":"
    )
    for side in SIDES:
        row = best[side]
        print(
            f"  {side:<16} {row['tokens_per_s']:8.0f} real tokens/s (median interval "
            f"{row['median_tokens_per_s']:.0f})  padding {row['padding_share']:6.1%}  dev loss "
            f"{row['dev_loss']:.4f}  (other processes took {row['others']:.0%} of the CPUs)"
        )
    parity = ours["dev_loss"] <= grouped["dev_loss"] * 1.01
    change = ours["dev_loss"] / grouped["dev_loss"] - 1
    for name, base, target in (
        ("Trainer grouped", grouped, "  (target >= 1.5 at parity)"),
        ("Trainer random", random_, ""),
    ):
        ratio = ours["tokens_per_s"] / base["tokens_per_s"]
        median = ours["median_tokens_per_s"] / base["median_tokens_per_s"]
        print(f"  ratio train.py / {name}: {ratio:.2f}x (median intervals {median:.2f}x){target}")
    verdict = "parity" if parity else "NOT at parity"
    print(f"  dev loss train.py vs Trainer grouped: {change:+.2%} ({verdict}: limit +1%)")
    if max(row["others"] for row in best.values()) > 0.1:
        print("  warning: other processes competed for the CPUs; rerun on an idle machine")


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="tiny model: optimizer steps")
    parser.add_argument("--steps-5m", type=int, default=60, help="~5.0M model: optimizer steps")
    parser.add_argument("--models", default="tiny,5m", help="comma-separated: tiny, 5m")
    parser.add_argument("--rounds", type=int, default=1, help="alternate, keep each side's best")
    parser.add_argument("--keep", help="keep the work folder here (default: a removed temp dir)")
    worker = parser.add_argument_group("internal (the Trainer ranks)")
    worker.add_argument("--trainer-worker", action="store_true")
    worker.add_argument("--local_rank", type=int, default=-1, help="set by the launcher")
    worker.add_argument("--group-by-length", action="store_true")
    for name in ("--data", "--model", "--out", "--save"):
        worker.add_argument(name, type=Path)
    for name in ("--lr", "--weight-decay", "--warmup-ratio", "--grad-clip"):
        worker.add_argument(name, type=float)
    worker.add_argument("--seed", type=int)
    worker.add_argument("--interval", type=int)
    args = parser.parse_args()
    for steps in (args.steps, args.steps_5m):
        if steps % INTERVALS or steps > 387:
            parser.error(f"steps must be multiples of {INTERVALS}, at most 387 (one epoch)")
    return args


def main() -> None:
    args = parse_args()
    if args.trainer_worker:
        trainer_worker(args)
        return
    os.environ["OMP_NUM_THREADS"] = "1"  # this process too (tokenizer training, dev loss)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        scratch = Path(args.keep or tmp)
        scratch.mkdir(parents=True, exist_ok=True)
        cache = os.environ.get("ALIGNINSTRUCT_CACHE", str(scratch / "cache"))
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
                   ALIGNINSTRUCT_CACHE=cache)  # fmt: skip
        started = time.perf_counter()
        train, dev = prepare_data(scratch, env)
        manifests = [json.loads((d / "manifest.json").read_text()) for d in (train, dev)]
        print(
            f"data: {manifests[0]['stages'][0]['samples']} MT samples (de-en + en-de) to train "
            f"on, {manifests[1]['stages'][0]['samples']} dev samples to score, "
            f"{time.perf_counter() - started:.0f} s",
            flush=True,
        )
        from data_prep.contract.tokenizer import load_tokenizer

        pad_id = load_tokenizer(str(scratch / "tok")).pad_token_id
        steps = {"tiny": args.steps, "5m": args.steps_5m}
        jobs = [
            Job(SIZES[key], key, train, scratch, steps[key], env) for key in args.models.split(",")
        ]
        for job in jobs:
            best: dict[str, dict] = {}
            for round_ in range(1, args.rounds + 1):
                for side in SIDES:
                    row, weights = run_side(job, side, round_)
                    row["dev_loss"] = dev_loss(weights, dev, pad_id)
                    print(
                        f"{job.size.name} round {round_} {side:<16}: {row['tokens_per_s']:6.0f} "
                        f"real tokens/s; dev loss {row['dev_loss']:.4f}; launch "
                        f"{row['launch_s']:.0f} s; other processes took {row['others']:.0%} "
                        "of the CPUs",
                        flush=True,
                    )
                    if row["tokens_per_s"] > best.get(side, {}).get("tokens_per_s", 0):
                        best[side] = row
            report(job, best, args.rounds)
        print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
