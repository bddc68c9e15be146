"""Benchmark: shard-build throughput and peak memory of data prep.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_build.py [--copies 4] [--workers 2] [--rounds 3]

How long a run takes: bench/README.md. Works from a fresh clone: the FreeDict
corpus is built from its Debian package (`apt-get download`) under
$ALIGNINSTRUCT_CACHE, else in a temp dir.

1. Throughput, same input, same run: the instruction samples of the FreeDict recipe
   (MT + AlignInstruct, both directions, replicated `--copies` times) are tokenized
   and written as megatron-core shards three ways, interleaved over `--rounds` rounds:
   - reference, the baseline: what Megatron-LM's tools/preprocess_data.py does with
     `--workers 2`: a process pool (`imap`, chunks of 32), one HF tokenizer call per
     sample, the parent writing with IndexedDatasetBuilder.add_item/end_document;
   - the same reference in one process (a second row);
   - ours: data_prep.shards (batched tokenization in `--workers` processes, token and
     loss-mask shards).
   Printed: median tokens/s (and spread) of each, the share of the CPUs other processes
   took, and ours' ratio to each reference (target >= 1.5 against the pool).
2. Peak memory of `python -m data_prep build` (all processes) on the corpus and on the
   corpus repeated 10 times; printed as a ratio (target <= 1.2: flat in corpus size).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cpu_load import LoadMeter  # noqa: E402
from data_prep.aligned import PairPlan, prepare_pair, read_split  # noqa: E402
from data_prep.contract.shards import indexed_dataset_module, token_dtype  # noqa: E402
from data_prep.contract.templates import DEFAULT_TEMPLATES  # noqa: E402
from data_prep.contract.tokenizer import load_tokenizer  # noqa: E402
from data_prep.instructions import BuildSettings, InstructionBuilder  # noqa: E402
from data_prep.recipe import AlignInstructConfig, HintInstructConfig, ReviseInstructConfig  # noqa: E402
from data_prep.shards import ShardWriter, encode_stream  # noqa: E402


def corpus_dir(cache: Path) -> Path:
    """The FreeDict split (train/dev/test), built from the Debian package (fetched with
    `apt-get download` into `cache`, or taken from there on later runs)."""
    out = cache / "corpus"
    if not (out / "train.de").exists():
        from data_prep.freedict import build_corpus, fetch_deb

        build_corpus(fetch_deb(cache / "deb"), out)
    return out


def make_samples(corpus: Path, cache: Path, scratch: Path) -> list[tuple[str, str]]:
    """MT (both directions) + AlignInstruct samples of the (cleaned) train split."""
    from data_prep.recipe import load_recipe

    recipe = load_recipe("freedict", [f"corpus.path={corpus}/", "tokenizer=unused"])
    plan = PairPlan(
        "de", "en", recipe, scratch / "aligned", cache / "align", ("intersection", "union")
    )
    pair = prepare_pair(plan)
    settings = BuildSettings(
        DEFAULT_TEMPLATES,
        {"de": "German", "en": "English"},
        {"mt": 1.0, "align": 1.0},
        AlignInstructConfig(),
        HintInstructConfig(),
        ReviseInstructConfig(),
        True,
        1,
        "bench",
    )
    builder = InstructionBuilder(settings, ["mt", "align"])
    return [(s.prompt, s.answer) for p in read_split(pair, "train") for s in builder.samples(p)]


_WORKER_TOKENIZER: Any = None


def _init_reference_worker(tokenizer_path: str) -> None:
    global _WORKER_TOKENIZER
    _WORKER_TOKENIZER = load_tokenizer(tokenizer_path)


def _encode_document(sample: tuple[str, str]) -> np.ndarray:
    """One sample, one tokenizer call, as preprocess_data.py's Encoder.encode does."""
    prompt, answer = sample
    ids = _WORKER_TOKENIZER(prompt + answer)["input_ids"] + [_WORKER_TOKENIZER.eos_token_id]
    return np.asarray(ids, dtype=np.int64)


def reference(
    samples: list[tuple[str, str]], tokenizer_path: str, out: Path, workers: int
) -> tuple[int, float]:
    """Megatron-LM's tools/preprocess_data.py: a tokenizer call per document, in a
    `--workers` process pool (`pool.imap(encode, docs, 32)`) or in this process when
    `workers` is 1; the parent writes with IndexedDatasetBuilder.add_item/end_document."""
    started = time.perf_counter()
    tokenizer = load_tokenizer(tokenizer_path)
    builder = indexed_dataset_module().IndexedDatasetBuilder(
        str(out / "ref.bin"), dtype=token_dtype(len(tokenizer))
    )
    tokens = 0
    with contextlib.ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(
                mp.get_context("fork").Pool(
                    workers, initializer=_init_reference_worker, initargs=(tokenizer_path,)
                )
            )
            documents = pool.imap(_encode_document, samples, 32)
        else:
            _init_reference_worker(tokenizer_path)
            documents = map(_encode_document, samples)
        for ids in documents:
            builder.add_item(torch.from_numpy(ids))
            builder.end_document()
            tokens += len(ids)
    builder.finalize(str(out / "ref.idx"))
    return tokens, time.perf_counter() - started


def ours(
    samples: list[tuple[str, str]], tokenizer_path: str, out: Path, workers: int
) -> tuple[int, float]:
    """data_prep.shards: batched tokenization in worker processes, token + mask shards."""
    started = time.perf_counter()
    tokenizer = load_tokenizer(tokenizer_path)
    writer = ShardWriter(out / "ours", token_dtype(len(tokenizer)), 10**9)
    batches = (samples[i : i + 256] for i in range(0, len(samples), 256))
    tokens = 0
    for encoded in encode_stream(batches, tokenizer_path, 10**6, workers):
        writer.add(encoded)
        tokens += int(encoded.lengths.sum())
    writer.close()
    return tokens, time.perf_counter() - started


def peak_rss(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(peak MiB summed over the process tree, seconds) of a command, sampled every 20 ms."""
    started = time.perf_counter()
    proc = psutil.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                procs = [proc, *proc.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    _, stderr = proc.communicate()
    done.set()
    thread.join()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{stderr.decode()[-2000:]}")
    return peak / 2**20, time.perf_counter() - started


def memory(corpus: Path, tokenizer: str, scratch: Path, cache: Path) -> None:
    env = dict(os.environ, ALIGNINSTRUCT_CACHE=str(cache))
    results = {}
    for copies in (1, 10):
        data = scratch / f"x{copies}"
        data.mkdir()
        for lang in ("de", "en"):
            text = (corpus / f"train.{lang}").read_text(encoding="utf-8")
            (data / f"train.{lang}").write_text(text * copies, encoding="utf-8")
        command = [
            sys.executable, "-m", "data_prep", "build", "freedict",
            "--out", str(scratch / f"out{copies}"), f"corpus.path={data}/",
            f"tokenizer={tokenizer}", "curriculum=MT", "clean.dedup=false",
        ]  # fmt: skip
        results[copies] = peak_rss(command, env)
        print(
            f"build x{copies:<2}: peak {results[copies][0]:7.1f} MiB, {results[copies][1]:5.1f} s"
        )
    print(f"peak memory ratio 10x/1x: {results[10][0] / results[1][0]:.3f}  (target <= 1.2)")


def throughput(
    samples: list[tuple[str, str]], tokenizer: str, scratch: Path, workers: int, rounds: int
) -> None:
    """Both references and ours, interleaved round by round; medians and spreads."""
    sides: dict[str, Callable[[], tuple[int, float]]] = {
        f"reference, {workers}-worker pool": (
            lambda: reference(samples, tokenizer, scratch, workers)
        ),
        "reference, 1 process": lambda: reference(samples, tokenizer, scratch, 1),
        f"data_prep, {workers} workers": lambda: ours(samples, tokenizer, scratch, workers),
    }
    rates: dict[str, list[float]] = {name: [] for name in sides}
    loads: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, side in sides.items():
            meter = LoadMeter.start()
            tokens, seconds = side()
            loads[name].append(meter.stop()[1])
            rates[name].append(tokens / seconds)
    print(f"throughput, {rounds} rounds interleaved (median tokens/s, min-max):")
    for name, row in rates.items():
        print(
            f"  {name:<28} {statistics.median(row):10.0f}  ({min(row):.0f}-{max(row):.0f}); "
            f"other processes took {statistics.median(loads[name]):.0%} of the CPUs"
        )
    ours_rate = statistics.median(rates[f"data_prep, {workers} workers"])
    for name in list(sides)[:2]:
        ratio = ours_rate / statistics.median(rates[name])
        target = "  (target >= 1.5)" if "pool" in name else ""
        print(f"ratio data_prep / {name}: {ratio:.2f}x{target}")
    if max(max(x) for x in loads.values()) > 0.1:
        print("warning: other processes competed for the CPUs; rerun on an idle machine")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=4, help="replicate the samples this often")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--tokenizer", help="HF tokenizer folder (default: train one locally)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        scratch = Path(tmp)
        cache = Path(os.environ.get("ALIGNINSTRUCT_CACHE", scratch / "cache"))
        corpus = corpus_dir(cache)
        tokenizer = args.tokenizer
        if tokenizer is None:
            from data_prep.tokenizer import train_tokenizer

            tokenizer = str(
                train_tokenizer([corpus / "train.de", corpus / "train.en"], scratch / "tok")
            )
        samples = make_samples(corpus, cache, scratch) * args.copies
        print(f"input: {len(samples)} samples (MT both ways + AlignInstruct, x{args.copies})")
        throughput(samples, tokenizer, scratch, args.workers, args.rounds)
        memory(corpus, tokenizer, scratch, cache)


if __name__ == "__main__":
    main()
