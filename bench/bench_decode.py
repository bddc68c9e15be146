"""Benchmark: sentences/s of eval's decoder against transformers' batched `generate`.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_decode.py [--sentences 500] [--repeats 3]

How long a run takes: bench/README.md.
Works from a fresh clone: the FreeDict corpus is built from its Debian package
(`apt-get download`) under $ALIGNINSTRUCT_CACHE, else in a temp dir.

Model: a tiny BLOOM fine-tuned briefly on FreeDict MT instructions (tests/support/quick_train.py),
so that its answers end at EOS at varying lengths. Sentences: the FreeDict test split,
German to English. Decoders (greedy, max 64 new tokens, cut at EOS or newline):
  1. transformers' batched `generate` on length-sorted, left-padded batches (the eval
     decoder's beam-search path), at each of `--batch-sizes`: its best is the baseline;
  2. eval.decode.Translator (shared-prefix KV cache, finished rows leave the batch and
     new ones are prefilled into it), at the same batch sizes: its best is ours;
  3. one sentence per `generate` call (on the first `--single` sentences), for scale.
Every run's outputs are checked identical to the first. The sweep is repeated
`--repeats` times, both decoders interleaved batch size by batch size, so that load from
other processes falls on both alike; each row reports the median and the spread (min-max)
of its repeats and the share of the CPUs other processes took meanwhile. The ratio is
ours' best median over generate's best median (target: at least 1.5x); the ratio of the
per-repeat bests is shown as its spread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_build import corpus_dir  # noqa: E402
from bench.cpu_load import LoadMeter  # noqa: E402
from data_prep.contract.templates import DEFAULT_TEMPLATES  # noqa: E402
from eval.decode import DecodeConfig, Translator, cut, generate_batch  # noqa: E402
from tests.support.quick_train import quick_tiny_model  # noqa: E402

BATCH_SIZES = "16,32,64,128,256"


def prepare(scratch: Path) -> tuple[Path, list[str]]:
    """(trained tiny model folder, German test sentences)."""
    from data_prep.tokenizer import train_tokenizer

    cache = Path(os.environ.get("ALIGNINSTRUCT_CACHE", scratch / "cache"))
    corpus = corpus_dir(cache)
    tokenizer = train_tokenizer([corpus / "train.de", corpus / "train.en"], scratch / "tok")
    shards = scratch / "shards"
    subprocess.run(
        [sys.executable, "-m", "data_prep", "build", "freedict", f"corpus.path={corpus}/",
         f"tokenizer={tokenizer}", "curriculum=MT", "--out", str(shards)],
        cwd=ROOT, check=True, capture_output=True,
        env=dict(os.environ, ALIGNINSTRUCT_CACHE=str(cache)),
    )  # fmt: skip
    sources = (corpus / "test.de").read_text(encoding="utf-8").splitlines()
    return quick_tiny_model(shards, scratch / "model", steps=400), sources


def timed(fn: Callable[[], list[str]]) -> tuple[list[str], float, float]:
    """(outputs, seconds, share of the CPUs other processes took meanwhile)."""
    meter = LoadMeter.start()
    outputs = fn()
    seconds, others = meter.stop()
    return outputs, seconds, others


def summary(rates: list[float]) -> str:
    return f"{statistics.median(rates):7.1f} sentences/s  ({min(rates):.1f}-{max(rates):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--single", type=int, default=100, help="sentences for decoder 3")
    parser.add_argument("--batch-sizes", default=BATCH_SIZES, help="comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    sizes = [int(x) for x in args.batch_sizes.split(",")]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-decode-") as tmp:
        model_dir, sources = prepare(Path(tmp))
        model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompts = [DEFAULT_TEMPLATES.mt("German", "English", s)[0] for s in sources[: args.sentences]]
    ids = tokenizer(prompts)["input_ids"]
    print(f"corpus, tokenizer and model ready in {time.perf_counter() - started:.0f} s", flush=True)

    def text(tokens: list[int]) -> str:
        return cut(tokenizer.decode(tokens, skip_special_tokens=True))

    def config(size: int) -> DecodeConfig:
        return DecodeConfig(batch_size=size, max_new_tokens=args.max_new_tokens)

    translators = {size: Translator(model, tokenizer, config(size)) for size in sizes}

    def generate(size: int) -> list[str]:
        return [text(t) for t in translators[size].generate(ids, None)]

    def ours(size: int) -> list[str]:
        return translators[size].translate(prompts)

    decoders = {"generate": generate, "ours": ours}
    rates: dict[tuple[str, int], list[float]] = {}
    loads: list[float] = []
    reference: list[str] | None = None
    mismatches = 0
    with torch.inference_mode():
        for repeat in range(args.repeats):
            for size in sizes:
                for name, decode in decoders.items():
                    outputs, seconds, others = timed(lambda d=decode, s=size: d(s))
                    reference = reference or outputs
                    mismatches += sum(a != b for a, b in zip(outputs, reference, strict=True))
                    rates.setdefault((name, size), []).append(len(prompts) / seconds)
                    loads.append(others)
                    print(
                        f"repeat {repeat + 1}/{args.repeats} {name:<8} batch {size:>3}: "
                        f"{len(prompts) / seconds:7.1f} sentences/s (others {others:.0%})",
                        flush=True,
                    )
        assert reference is not None
        single, single_s, single_load = timed(
            lambda: [
                text(generate_batch(model, [r], tokenizer.pad_token_id,
                                    tokenizer.eos_token_id, config(1))[0])
                for r in ids[: args.single]
            ]
        )  # fmt: skip
    same_single = sum(a == b for a, b in zip(single, reference, strict=False))
    lengths = [len(tokenizer(t)["input_ids"]) for t in reference]
    print(
        f"\n{len(prompts)} sentences de->en, greedy, output length {min(lengths)}-"
        f"{max(lengths)} tokens (mean {sum(lengths) / len(lengths):.1f}), max_new_tokens "
        f"{args.max_new_tokens}, torch threads {torch.get_num_threads()}, "
        f"{args.repeats} repeats (median, min-max):"
    )
    for (name, size), row in sorted(rates.items()):
        print(f"  {name:<8} batch {size:>3}: {summary(row)}")
    print(f"  one sentence per generate call: {args.single / single_s:7.1f} sentences/s")
    best = {
        name: max(sizes, key=lambda s, n=name: statistics.median(rates[(n, s)]))
        for name in decoders
    }
    base, top = (statistics.median(rates[(n, best[n])]) for n in ("generate", "ours"))
    per_repeat = [
        max(rates[("ours", s)][r] for s in sizes) / max(rates[("generate", s)][r] for s in sizes)
        for r in range(args.repeats)
    ]
    print(
        f"identical outputs: {mismatches} differences over {len(rates) * args.repeats} runs; "
        f"one-per-call {same_single}/{len(single)} identical"
    )
    print(f"best generate: batch {best['generate']}; best ours: batch {best['ours']}")
    print(
        f"ours (best) / generate (best): {top / base:.2f}x  (per repeat "
        f"{min(per_repeat):.2f}-{max(per_repeat):.2f}x; target >= 1.5)"
    )
    print(
        f"other processes took {statistics.median(loads):.0%} of the CPUs (median over runs, "
        f"max {max(loads):.0%}; one-per-call {single_load:.0%})"
    )
    if max(loads) > 0.1:
        print("warning: other processes competed for the CPUs; rerun on an idle machine")
    if mismatches or same_single != len(single):
        sys.exit("error: the decoders' outputs differ")


if __name__ == "__main__":
    main()
