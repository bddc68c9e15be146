"""GPU check: one command on one H100/H200 with no network, within 10 minutes.

    python bench/gpu_check.py --wheels .whl --out runs/gpu-check        # on the GPU machine
    python bench/gpu_check.py --prepare-only --out /tmp/gc n_layer=2 hidden_size=64 n_head=4

What the GPU image lacks (deepspeed, megatron-core and their dependencies) is installed
offline from a carried wheel folder into a venv made with `--system-site-packages`, and
the check re-runs itself there (`sys.executable` from then on). How to prepare the folder
on a machine with the registry (docs/gpu-check.md):

    python bench/gpu_check.py --download-wheels .whl    # on a machine with the registry

Then: a BLOOM-1b1-shaped random model (bloomz-1b1's exact config.json, bf16) and MT
shards of rows up to 512 tokens (a seeded synthetic corpus: the model is random, only
the shapes matter) are built locally; `training/train.py` runs full and LoRA bf16 under
ZeRO-3 with the shipped bloomz-1b1 configs at 0.85 x the largest micro batch the planner
allows on this card; the eval decoder is timed against batched `generate` at its
best batch size. One JSON: tokens/s, MFU (training/flops.py), peak GPU memory against
the planner, sentences/s of both decoders. `key=value` arguments change the model's
config (for the CPU-side test of the preparation). Checkpoints and run folders go to
`--work` (default: a sibling of `--out`), never into the result folder.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WHEELS = {  # distribution -> version; what the GPU image lacks
    "deepspeed": "0.19.8", "megatron_core": "0.16.1", "hjson": "3.1.0", "ninja": "1.13.2",
    "py_cpuinfo": "9.0.0", "msgpack": "1.2.4", "einops": "0.8.2", "pydantic": "2.14.4",
    "pydantic_core": "2.50.5", "annotated_types": "0.8.0", "typing_inspection": "0.4.5",
    "tensorboard": "2.21.0", "tensorboard_data_server": "0.7.2", "grpcio": "1.85.3",
    "protobuf": "7.36.2", "absl_py": "2.5.1", "markdown": "3.11.3", "werkzeug": "3.1.9",
    "markupsafe": "3.0.4", "pillow": "13.0.0", "psutil": "7.2.2",
}  # fmt: skip
MARGIN = 0.85  # of the planner's largest micro batch: its estimate is not a measurement
PRESET = "bloomz-1b1"
SEQ_LEN = 512


def missing_wheels(folder: Path) -> list[str]:
    """The WHEELS absent from `folder` (names normalised as in wheel file names)."""
    present = {w.name.split("-")[0].lower().replace(".", "_"): w.name.split("-")[1]
               for w in folder.glob("*.whl")}  # fmt: skip
    return [f"{n}=={v}" for n, v in WHEELS.items() if present.get(n.lower()) != v]


def download_command(folder: Path) -> list[list[str]]:
    """The pip commands that fill `folder` with the WHEELS for Python 3.12 on x86-64 Linux
    (run on any machine with the registry); deepspeed has only an sdist on PyPI: a
    pure-Python wheel is built with its ops left to compile at first use (DS_BUILD_OPS=0)."""
    pip = [sys.executable, "-m", "pip"]
    binary = [f"{name.replace('_', '-')}=={version}" for name, version in WHEELS.items()
              if name != "deepspeed"]  # fmt: skip
    return [
        [*pip, "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
         "--implementation", "cp", "--platform", "manylinux2014_x86_64", "--platform",
         "manylinux_2_28_x86_64", "-d", str(folder), *binary],
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(folder),
         f"deepspeed=={WHEELS['deepspeed']}"],
    ]  # fmt: skip


def download_wheels(folder: Path) -> int:
    """Fill `folder`; returns its size in bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DS_BUILD_OPS="0")
    for command in download_command(folder):
        subprocess.run(command, check=True, env=env)
    if missing := missing_wheels(folder):
        raise SystemExit(f"error: {folder} still lacks {', '.join(missing)}")
    return sum(w.stat().st_size for w in folder.glob("*.whl"))


def install_wheels(folder: Path, venv: Path) -> Path:
    """A venv over the system's packages (torch, transformers, peft stay the image's) with
    the carried wheels installed offline; returns its python."""
    if missing := missing_wheels(folder):
        raise SystemExit(f"error: {folder} lacks {', '.join(missing)} (docs/gpu-check.md)")
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                       check=True)  # fmt: skip
    wheels = [str(w) for w in sorted(folder.glob("*.whl"))]
    command = [str(python), "-m", "pip", "install", "--no-index", "--no-deps", *wheels]
    subprocess.run(command, check=True)
    return python


def synthetic_corpus(out: Path, pairs: int = 2000, seed: int = 1) -> Path:
    """train/dev/test.{de,en}: seeded pseudo-words, sentences of 60-200 words (rows up to
    512 tokens); the test split is short sentences, for decoding."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(3000)]
    out.mkdir(parents=True, exist_ok=True)
    for split, count, (low, high) in (("train", pairs, (60, 200)), ("dev", 50, (60, 200)),
                                      ("test", 256, (4, 20))):  # fmt: skip
        for lang in ("de", "en"):
            lines = [" ".join(rng.choices(words, k=rng.randint(low, high))) + "."
                     for _ in range(count)]  # fmt: skip
            (out / f"{split}.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def prepare(out: Path, shape: list[str]) -> tuple[Path, Path, Path]:
    """(corpus, shards, model folder): a BLOOM-1b1-shaped random model and MT shards built
    with a tokenizer as wide as its vocabulary."""
    import yaml

    from bench.realshape import build_shards, random_model, widen_tokenizer
    from data_prep.tokenizer import train_tokenizer
    from training.presets import preset_config

    config = {**preset_config(PRESET), **{k: yaml.safe_load(v) for k, v in
                                          (item.split("=", 1) for item in shape)}}  # fmt: skip
    corpus = synthetic_corpus(out / "corpus")
    small = train_tokenizer([corpus / "train.de", corpus / "train.en"], out / "tok", 4000)
    wide = widen_tokenizer(small, out / "tokenizer", config["vocab_size"])
    shards = build_shards(corpus, wide, out / "shards", "curriculum=MT", f"max_seq_len={SEQ_LEN}")
    model = random_model(config, wide, out / "model", "bfloat16")
    return corpus, shards, model


def planned_micro_batch(config: Path, model: Path, memory_gb: float) -> tuple[int, float]:
    """The planner's largest micro batch on this card, times MARGIN, and its estimate (GB)
    at that micro batch."""
    from training.plan import parse_args, plan

    argv = ["--config", str(config), "--nodes", "1", "--gpus-per-node", "1"]
    argv += ["--gpu-memory-gb", f"{memory_gb:.0f}", "--seq-len", str(SEQ_LEN)]
    argv += [f"model.name={model}"]
    micro = max(1, int(plan(parse_args(argv))["largest_micro_batch"] * MARGIN))
    return micro, plan(parse_args([*argv, "--micro-batch", str(micro)]))["per_rank_gb"]


def train_rows(run: Path) -> list[dict]:
    """metrics.jsonl's training rows (dev-loss rows left out), the first (warm-up) dropped."""
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [row for row in map(json.loads, lines) if "tokens_per_s" in row][1:]


def train(mode: str, shards: Path, model: Path, work: Path, steps: int) -> dict:
    import torch

    config = ROOT / "training" / "configs" / f"{PRESET}-{mode}.yaml"
    memory = torch.cuda.get_device_properties(0).total_memory / 2**30
    micro, planned = planned_micro_batch(config, model, memory)
    run = work / mode
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1",
        str(ROOT / "training" / "train.py"), "--config", str(config), f"data={shards}",
        f"run_dir={run}", f"model.name={model}", f"micro_batch_size={micro}",
        f"global_batch_size={micro}", f"max_steps_per_stage={steps}", "log_every=5",
        "save_every=100000", "resume=never",
    ]  # fmt: skip
    subprocess.run(command, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True)
    rows = train_rows(run)
    measured = max(r["peak_memory_mb"] for r in rows) / 1024
    mfu = [r["mfu"] for r in rows if "mfu" in r]
    return {
        "micro_batch": micro,
        "tokens_per_s": sum(r["tokens_per_s"] for r in rows) / len(rows),
        "mfu": sum(mfu) / len(mfu) if mfu else None,
        "peak_gpu_gb": round(measured, 2),
        "planner_gb": planned,
        "planner_over_measured": round(planned / measured, 3),
    }


def decoders(model: Path, corpus: Path) -> dict:
    """Sentences/s: the eval decoder against batched `generate` at its best batch size."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from data_prep.contract.templates import DEFAULT_TEMPLATES
    from eval.decode import DecodeConfig, Translator, cut, generate_batch

    lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch.bfloat16).cuda().eval()
    tokenizer = AutoTokenizer.from_pretrained(model)
    sources = (corpus / "test.de").read_text(encoding="utf-8").splitlines()
    prompts = [DEFAULT_TEMPLATES.mt("German", "English", s)[0] for s in sources]
    ids = tokenizer(prompts)["input_ids"]

    def rate(run) -> float:
        torch.cuda.synchronize()
        started = time.perf_counter()
        run()
        torch.cuda.synchronize()
        return len(prompts) / (time.perf_counter() - started)

    order = sorted(ids, key=len)  # batched generate at its best: sorted, left-padded

    def batched(size: int) -> None:
        config = DecodeConfig(batch_size=size, max_new_tokens=32)
        for start in range(0, len(order), size):
            generate_batch(lm, order[start : start + size], pad, tokenizer.eos_token_id, config)

    pad = tokenizer.pad_token_id
    generate = {size: rate(lambda s=size: batched(s)) for size in (16, 32, 64, 128, 256)}
    best = max(generate, key=generate.get)
    ours = Translator(lm, tokenizer, DecodeConfig(batch_size=256, max_new_tokens=32))
    ours_rate = rate(lambda: ours.translate(prompts))
    # Greedy outputs of the two on 8 sentences: the decoder must compute the same thing.
    eight = Translator(lm, tokenizer, DecodeConfig(batch_size=8, max_new_tokens=32))
    by_generate = [cut(tokenizer.decode(t, skip_special_tokens=True))
                   for t in eight.generate(ids[:8], None)]  # fmt: skip
    by_decoder = eight.translate(prompts[:8])
    return {"generate_best_batch": best, "generate_sentences_per_s": generate[best],
            "eval_decoder_sentences_per_s": ours_rate,
            "ratio": round(ours_rate / generate[best], 2),
            "greedy_outputs_equal_8": by_generate == by_decoder}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "gpu-check")
    parser.add_argument("--work", type=Path, help="run folders and checkpoints (default: OUT-work)")
    parser.add_argument("--wheels", type=Path, help="carried wheel folder: install, re-run")
    parser.add_argument("--download-wheels", type=Path, help="fill this folder and stop")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--prepare-only", action="store_true", help="CPU side: model, shards")
    parser.add_argument("shape", nargs="*", help="config.json overrides (key=value)")
    args = parser.parse_args()
    out = args.out.resolve()
    work = (args.work or out.with_name(out.name + "-work")).resolve()
    if args.download_wheels:
        size = download_wheels(args.download_wheels)
        print(json.dumps({"wheels": str(args.download_wheels), "megabytes": round(size / 1e6, 1)}))
        return
    if args.wheels:  # install into a venv over the image's packages, then run from it
        python = install_wheels(args.wheels.resolve(), work / "venv")
        os.execv(str(python), [str(python), __file__, *strip_wheels(sys.argv[1:])])
    corpus, shards, model = prepare(work, args.shape)
    if args.prepare_only:
        print(json.dumps({"corpus": str(corpus), "shards": str(shards), "model": str(model)}))
        return
    import torch

    from training.flops import peak_flops

    card = torch.cuda.get_device_name(0)
    peak = peak_flops(card)
    result = {"card": card, "peak_tflops": peak and peak / 1e12, "seq_len": SEQ_LEN}
    for mode in ("full", "lora"):
        result[mode] = train(mode, shards, model, work, args.steps)
    result["decode"] = decoders(work / "full" / "export" / "model", corpus)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def strip_wheels(argv: list[str]) -> list[str]:
    """The command line without `--wheels DIR` (the re-run in the venv installs nothing)."""
    kept, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--wheels":
            skip = True
        elif not item.startswith("--wheels="):
            kept.append(item)
    return kept


if __name__ == "__main__":
    main()
