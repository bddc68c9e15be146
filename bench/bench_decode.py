"""Benchmark: sentences/s of eval's decoder against two references, same model and run.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_decode.py [--sentences 500] [--batch-size 64]

Model: a tiny BLOOM fine-tuned briefly on FreeDict MT instructions (tests/support/quick_train.py),
so that its answers end at EOS at varying lengths. Sentences: the FreeDict test split,
German to English. Decoders (greedy, max 64 new tokens, cut at EOS or newline):
  1. one sentence per `generate` call (on the first `--single` sentences);
  2. transformers' batched `generate`, batch 32, left padding, sorted by length;
  3. eval.decode.Translator: shared-prefix KV cache, finished rows leave the batch and
     new ones are prefilled into it.
Greedy outputs are checked identical across the three. Prints sentences/s and ratios
(target: at least 1.5x the batched `generate`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_build import corpus_dir  # noqa: E402
from data_prep.contract.templates import DEFAULT_TEMPLATES  # noqa: E402
from eval.decode import DecodeConfig, Translator, cut, generate_batch  # noqa: E402
from tests.support.quick_train import quick_tiny_model  # noqa: E402


def prepare(scratch: Path) -> tuple[Path, Path]:
    """(trained tiny model folder, corpus folder)."""
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
    return quick_tiny_model(shards, scratch / "model", steps=400), corpus


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--single", type=int, default=100, help="sentences for decoder 1")
    parser.add_argument("--batch-size", type=int, default=64, help="eval decoder's batch")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="bench-decode-") as tmp:
        model_dir, corpus = prepare(Path(tmp))
        model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    sources = (corpus / "test.de").read_text(encoding="utf-8").splitlines()[: args.sentences]
    prompts = [DEFAULT_TEMPLATES.mt("German", "English", s)[0] for s in sources]
    ids = tokenizer(prompts)["input_ids"]
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id

    def text(tokens: list[int]) -> str:
        return cut(tokenizer.decode(tokens, skip_special_tokens=True))

    ref_config = DecodeConfig(batch_size=32, max_new_tokens=args.max_new_tokens)
    with torch.inference_mode():
        single, single_s = timed(
            lambda: [
                text(generate_batch(model, [r], pad, eos, ref_config)[0])
                for r in ids[: args.single]
            ]
        )
        plain = Translator(model, tokenizer, ref_config)
        batched, batched_s = timed(lambda: [text(t) for t in plain.generate(ids, None)])
    ours_config = DecodeConfig(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    translator = Translator(model, tokenizer, ours_config)
    ours, ours_s = timed(translator.translate, prompts)
    lengths = [len(tokenizer(t)["input_ids"]) for t in ours]
    same_single = sum(a == b for a, b in zip(single, ours, strict=False))
    same_batched = sum(a == b for a, b in zip(batched, ours, strict=True))
    rates = {
        "one per generate call": args.single / single_s,
        "batched generate (32)": len(prompts) / batched_s,
        f"eval decoder ({args.batch_size})": len(prompts) / ours_s,
    }
    mean = sum(lengths) / len(lengths)
    print(f"{len(prompts)} sentences, output length {min(lengths)}-{max(lengths)} tokens "
          f"(mean {mean:.1f}), max_new_tokens {args.max_new_tokens}")  # fmt: skip
    for name, rate in rates.items():
        print(f"{name:>24}: {rate:8.1f} sentences/s")
    print(f"identical outputs: {same_single}/{args.single} vs one-per-call, "
          f"{same_batched}/{len(prompts)} vs batched generate")  # fmt: skip
    base = rates["batched generate (32)"]
    print(f"batched generate / one per call: {base / rates['one per generate call']:.2f}x")
    ours_rate = rates[f"eval decoder ({args.batch_size})"]
    print(f"eval decoder / batched generate: {ours_rate / base:.2f}x  (target >= 1.5)")


if __name__ == "__main__":
    main()
