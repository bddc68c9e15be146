"""Benchmark: shard-build throughput and peak memory of data prep.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_build.py [--copies 4] [--workers 2]

1. Throughput, same input, same run: the instruction samples of the FreeDict recipe
   (MT + AlignInstruct, both directions, replicated `--copies` times) are tokenized
   and written as megatron-core shards twice:
   - reference: what Megatron-LM's tools/preprocess_data.py does in one process, one
     HF tokenizer call per sample, then IndexedDatasetBuilder.add_item/end_document;
   - ours: data_prep.shards (batched tokenization in `--workers` processes, token and
     loss-mask shards).
   Printed as tokens/s each and their ratio (target >= 1.8 on 2 cores).
2. Peak memory of `python -m data_prep build` (all processes) on the corpus and on the
   corpus repeated 10 times; printed as a ratio (target <= 1.2).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data_prep.build import PairData, aligned_pairs  # noqa: E402
from data_prep.cleaning import CleanReport  # noqa: E402
from data_prep.contract.shards import indexed_dataset_module, token_dtype  # noqa: E402
from data_prep.contract.templates import DEFAULT_TEMPLATES  # noqa: E402
from data_prep.contract.tokenizer import load_tokenizer  # noqa: E402
from data_prep.instructions import BuildSettings, InstructionBuilder  # noqa: E402
from data_prep.recipe import AlignInstructConfig, HintInstructConfig, ReviseInstructConfig  # noqa: E402
from data_prep.shards import ShardWriter, encode_stream  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "freedict-deu-eng"


def corpus_dir(cache: Path) -> Path:
    """The FreeDict split: the shared copy when present, else built from the .deb."""
    if (SHARED / "train.de").exists():
        return SHARED
    out = cache / "corpus"
    if not (out / "train.de").exists():
        from data_prep.freedict import build_corpus, fetch_deb

        build_corpus(fetch_deb(cache / "deb"), out)
    return out


def make_samples(corpus: Path, cache: Path) -> list[tuple[str, str]]:
    """MT (both directions) + AlignInstruct samples of the train split."""
    from data_prep.align import AlignConfig, align

    src = (corpus / "train.de").read_text(encoding="utf-8").splitlines()
    tgt = (corpus / "train.en").read_text(encoding="utf-8").splitlines()
    pair = PairData("de", "en", corpus / "train.de", corpus / "train.en", CleanReport())
    pair.alignment = align(src, tgt, AlignConfig(), cache / "align")
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
    return [
        (s.prompt, s.answer)
        for p in aligned_pairs(pair, {"union", "intersection"})
        for s in builder.samples(p)
    ]


def reference(samples: list[tuple[str, str]], tokenizer_path: str, out: Path) -> tuple[int, float]:
    """One process: tokenizer call per document, IndexedDatasetBuilder.add_item."""
    import numpy as np
    import torch

    started = time.perf_counter()
    tokenizer = load_tokenizer(tokenizer_path)
    builder = indexed_dataset_module().IndexedDatasetBuilder(
        str(out / "ref.bin"), dtype=token_dtype(len(tokenizer))
    )
    tokens = 0
    for prompt, answer in samples:
        ids = tokenizer(prompt + answer)["input_ids"] + [tokenizer.eos_token_id]
        builder.add_item(torch.tensor(np.asarray(ids, dtype=np.int64)))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=4, help="replicate the samples this often")
    parser.add_argument("--workers", type=int, default=2)
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
        samples = make_samples(corpus, cache) * args.copies
        print(f"input: {len(samples)} samples (MT both ways + AlignInstruct, x{args.copies})")
        ref_tokens, ref_s = reference(samples, tokenizer, scratch)
        our_tokens, our_s = ours(samples, tokenizer, scratch, args.workers)
        ref_rate, our_rate = ref_tokens / ref_s, our_tokens / our_s
        print(f"reference (1 process, per sample): {ref_rate:10.0f} tokens/s ({ref_s:.1f} s)")
        label = f"data_prep ({args.workers} workers, batched):"
        print(f"{label} {our_rate:10.0f} tokens/s ({our_s:.1f} s)")
        print(f"throughput ratio: {our_rate / ref_rate:.2f}x  (target >= 1.8)")
        memory(corpus, tokenizer, scratch, cache)


if __name__ == "__main__":
    main()
