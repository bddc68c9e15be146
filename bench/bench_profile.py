"""Where the time of a training step goes: 2-rank ZeRO-3 runs of training/train.py on
CPU, split into forward, backward, ZeRO-3 gather/release, reduce-scatter, optimizer, data.

    .venv/bin/python bench/bench_profile.py [--models tiny,5m] [--configs shipped,bloom-gelu]
        [--rounds 1]

How long a run takes: bench/README.md. Works from a fresh clone (FreeDict corpus from
its Debian package, as bench_train.py).

Each rank runs train.py's own `main()` (the same loop, engine and data) with wall-clock
timers wrapped around the methods that do each kind of work: DeepSpeedEngine.forward /
backward / step, ZeRO-3's PartitionedParameterCoordinator.fetch_sub_module (all-gather
of a module's parameters) and release_sub_module, DeepSpeedZeroOptimizer_Stage3's
gradient reduce-scatter (`__reduce_and_partition_ipg_grads`) and `step` (norm, clipping,
AdamW on the partition), StageData reads and `collate` (data), the loop's own small
all-reduces (loss, token counts) and the metrics logger. A region's time excludes the
regions nested in it, so "forward" is the forward compute alone and "gather" the
all-gathers wherever they run. Timed over the steps after `--warm` warm-up steps;
"other" is the step's wall time that no region covers.

Configs: `shipped` is train.py with ds_configs/zero3_cpu.json as committed; each other config
changes what VARIANTS says: ZeRO-3 settings in that JSON (`persist`: parameters under 1e5
elements kept whole on every rank, DeepSpeed's own default) or train.py overrides
(`bloom-gelu`: transformers' element-wise BLOOM GELU instead of the fused one). The ratio
of the steady step times (variant / shipped: above 1 means the variant is slower) is
printed per model size.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_train import MICRO_BATCH, SIZES, launch, prepare_data  # noqa: E402

# ZeRO-3 settings tried against the shipped ds_configs/zero3_cpu.json.
# name: (changes to the JSON's zero_optimization, train.py overrides)
VARIANTS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "shipped": ({}, []),
    "persist": ({"stage3_param_persistence_threshold": 100_000}, []),
    "no-overlap": ({"overlap_comm": False}, []),
    "no-prefetch": ({"stage3_prefetch_bucket_size": 0}, []),
    "bloom-gelu": ({}, ["model.fused_gelu=false"]),
}
STEPS = {"tiny": (10, 40), "5m": (4, 12)}  # (warm-up steps, timed steps)
REGIONS = (
    "forward", "backward", "gather", "release", "reduce-scatter", "optimizer",
    "engine step (rest)", "data", "loss/token all-reduce", "logging",
)  # fmt: skip


# --------------------------------------------------------------------------- the ranks


class Timers:
    """Exclusive wall time per region: a nested region's time is its own, not its parent's."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = dict.fromkeys(REGIONS, 0.0)
        self.stack: list[list[Any]] = []  # [name, started, time in nested regions]

    def wrap(self, owner: Any, attribute: str, name: str, top_only: bool = False) -> None:
        original = getattr(owner, attribute)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if top_only and self.stack:
                return original(*args, **kwargs)
            self.stack.append([name, time.perf_counter(), 0.0])
            try:
                return original(*args, **kwargs)
            finally:
                region, started, nested = self.stack.pop()
                elapsed = time.perf_counter() - started
                self.spent[region] += elapsed - nested
                if self.stack:
                    self.stack[-1][2] += elapsed

        setattr(owner, attribute, timed)

    def reset(self) -> None:
        self.spent = dict.fromkeys(REGIONS, 0.0)


def profile_worker(out: Path, warm: int, train_args: list[str]) -> None:
    import torch.distributed as dist
    from deepspeed.runtime.engine import DeepSpeedEngine
    from deepspeed.runtime.zero.partitioned_param_coordinator import (
        PartitionedParameterCoordinator as Coordinator,
    )
    from deepspeed.runtime.zero.stage3 import DeepSpeedZeroOptimizer_Stage3 as Stage3

    import training.train as train
    from training.data import StageData
    from training.logs import MetricsLogger

    timers = Timers()
    timers.wrap(DeepSpeedEngine, "forward", "forward")
    timers.wrap(DeepSpeedEngine, "backward", "backward")
    timers.wrap(DeepSpeedEngine, "step", "engine step (rest)")
    timers.wrap(Coordinator, "fetch_sub_module", "gather")
    timers.wrap(Coordinator, "release_sub_module", "release")
    timers.wrap(Stage3, "_DeepSpeedZeroOptimizer_Stage3__reduce_and_partition_ipg_grads",
                "reduce-scatter")  # fmt: skip
    timers.wrap(Stage3, "step", "optimizer")
    timers.wrap(StageData, "__getitem__", "data")
    timers.wrap(train, "collate", "data")
    timers.wrap(dist, "all_reduce", "loss/token all-reduce", top_only=True)
    timers.wrap(MetricsLogger, "step", "logging")
    marks: dict[str, float] = {}
    at_last_step: dict[str, float] = {}
    logger_step = MetricsLogger.step

    def counting_step(self: MetricsLogger, step: int, *args: Any, **kwargs: Any) -> None:
        logger_step(self, step, *args, **kwargs)
        if step == warm:
            timers.reset()
            marks["start"] = time.perf_counter()
        marks["end"], marks["steps"] = time.perf_counter(), step - warm
        # Regions as of this step: the stage-end dev loss that follows is not a step's work.
        at_last_step.update(timers.spent)

    logger_close = MetricsLogger.close

    def close_and_write(self: MetricsLogger) -> None:
        logger_close(self)  # after the last step, before the export
        write_rank_result(out, at_last_step, marks)

    MetricsLogger.step, MetricsLogger.close = counting_step, close_and_write
    sys.argv = [str(ROOT / "training" / "train.py"), *train_args]
    train.main()


def write_rank_result(out: Path, spent: dict[str, float], marks: dict[str, float]) -> None:
    rank = int(os.environ.get("RANK", "0"))
    result = {"wall": marks["end"] - marks["start"], "steps": marks["steps"], **spent}
    (out / f"rank{rank}.json").write_text(json.dumps(result) + "\n")


# --------------------------------------------------------------------------- main


def ds_json(scratch: Path, config: str) -> Path:
    ds = json.loads((ROOT / "ds_configs" / "zero3_cpu.json").read_text())
    ds["zero_optimization"].update(VARIANTS[config][0])
    path = scratch / f"zero3-{config}.json"
    path.write_text(json.dumps(ds, indent=2) + "\n")
    return path


def profile(
    key: str, config: str, data: Path, scratch: Path, env: dict[str, str], round_: int
) -> tuple[dict[str, float], float]:
    """Per-step seconds of each region (mean of the ranks) and the others' CPU share."""
    warm, timed = STEPS[key]
    out = scratch / f"profile-{key}-{config}-{round_}"
    out.mkdir()
    train_args = [
        "--config", "training/configs/tiny-cpu.yaml", f"data={data}", f"run_dir={out / 'run'}",
        f"micro_batch_size={MICRO_BATCH}", "grad_accum=1", f"max_steps_per_stage={warm + timed}",
        f"log_every={warm + timed}", f"save_every={10**9}", f"deepspeed={ds_json(scratch, config)}",
        *SIZES[key].overrides(), *VARIANTS[config][1],
    ]  # fmt: skip
    _, others = launch(
        [str(Path(__file__).resolve()), "--worker", "--out", str(out), "--warm", str(warm),
         "--", *train_args],
        env, scratch / f"profile-{key}-{config}-{round_}.log",
    )  # fmt: skip
    ranks = [json.loads(p.read_text()) for p in sorted(out.glob("rank*.json"))]
    per_step = {
        name: statistics.mean(r[name] / r["steps"] for r in ranks) for name in (*REGIONS, "wall")
    }
    per_step["other"] = per_step["wall"] - sum(per_step[name] for name in REGIONS)
    return per_step, others


def print_split(key: str, config: str, per_step: dict[str, float], others: float) -> None:
    wall = per_step["wall"]
    print(f"\n{SIZES[key].name} model, config '{config}': {wall * 1e3:.1f} ms per step "
          f"(mean of 2 ranks; other processes took {others:.0%} of the CPUs)")  # fmt: skip
    for name in (*REGIONS, "other"):
        print(f"  {name:<22} {per_step[name] * 1e3:8.1f} ms  {per_step[name] / wall:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="tiny,5m")
    parser.add_argument("--configs", default="shipped,bloom-gelu", help=", ".join(VARIANTS))
    parser.add_argument("--rounds", type=int, default=1, help="interleaved repeats")
    parser.add_argument("--keep", help="keep the work folder here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--local_rank", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warm", type=int, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.worker:
        train_args = [f"--local_rank={args.local_rank}", *(x for x in rest if x != "--")]
        profile_worker(args.out, args.warm, train_args)
        return
    configs = args.configs.split(",")
    if unknown := [c for c in configs if c not in VARIANTS]:
        expected = ", ".join(VARIANTS)
        parser.error(f"--configs: unknown {', '.join(unknown)}; expected some of {expected}")
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        scratch = Path(args.keep or tmp)
        scratch.mkdir(parents=True, exist_ok=True)
        cache = os.environ.get("ALIGNINSTRUCT_CACHE", str(scratch / "cache"))
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
                   ALIGNINSTRUCT_CACHE=cache, TQDM_DISABLE="1")  # fmt: skip
        data, _ = prepare_data(scratch, env)
        for key in args.models.split(","):
            walls: dict[str, list[float]] = {config: [] for config in configs}
            for round_ in range(1, args.rounds + 1):  # configs interleaved round by round
                for config in configs:
                    per_step, others = profile(key, config, data, scratch, env, round_)
                    print_split(key, config, per_step, others)
                    walls[config].append(per_step["wall"])
            shipped = statistics.median(walls.get("shipped") or [float("nan")])
            for config in (c for c in configs if c != "shipped"):
                variant = statistics.median(walls[config])
                print(
                    f"  step time {config} / shipped: {variant / shipped:.2f}x (median of "
                    f"{args.rounds} round(s); {variant * 1e3:.0f} vs {shipped * 1e3:.0f} ms)"
                )


if __name__ == "__main__":
    main()
