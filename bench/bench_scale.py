"""Benchmark: how `data_prep build` scales with the corpus, phase by phase.

    python bench/bench_scale.py [--pairs 4] [--base 2000] [--sizes 1 4 16] [--workers 2]

Works from a fresh clone, offline once the FreeDict .deb is cached (it is fetched with
`apt-get download` into $ALIGNINSTRUCT_CACHE/freedict otherwise).

1. Corpus, in OPUS-100's layout (ROOT/v1.0/supervised/af-en/opus.af-en-{split}.{af,en};
   codes after `en` as en-ga/opus.en-ga-...), one per size: `--pairs` language pairs of
   `--base` x size training lines each, plus a dev split (`--dev-lines`, 500), generated
   from FreeDict de-en. Each line joins one or two FreeDict sentence pairs drawn at
   random (in the same order on both sides), so lines
   are distinct (deduplication keeps them) and the aligner sees real co-occurrences; the
   German side of pair k is enciphered with a letter permutation of its own (pair 0
   unchanged), so every pair has a vocabulary of its own.
2. For each size: `python -m data_prep build opus100-supervised corpus.path=ROOT
   pairs=[..] tokenizer=TOK curriculum=MT+Align->MT workers=W --cache EMPTY` (alignment
   cache cold; OMP_NUM_THREADS=1, so eflomal uses one core per pair and pairs run in
   parallel). Its process tree is sampled every 50 ms: peak RSS of the build's own
   processes (the main process and its workers) and, apart, of eflomal (the aligner
   process `python -m data_prep.align` and the eflomal binary). CPU seconds of the whole
   tree come from getrusage(RUSAGE_CHILDREN); phase seconds from the manifest.
3. Printed: one row per size, the 16x/1x ratios (wall time per pair, build peak memory),
   whether the phases other than eflomal took less than eflomal, the cores kept busy, and
   an estimate of the paper's OPUS-100 build (24 pairs of up to 1M lines) on 2, 16 and 64
   cores. Everything is also written to OUT/scale.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import string
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cpu_load import LoadMeter  # noqa: E402
from data_prep.aligned import PHASES  # noqa: E402
from data_prep.build import STAGE_PHASES  # noqa: E402
from data_prep.contract.readers import opus100_files  # noqa: E402

# OPUS-100 codes of the paper's unseen languages; the text is FreeDict's whatever the code,
# so only languages written in Latin script (cleaning drops lines in another language's
# script as wrong_script).
CODES = ("af", "cy", "ga", "gd", "gl", "ha", "li", "nb", "nn", "oc", "se", "tk")
DEV_LINES = 500
OPUS100_PAIRS, OPUS100_LINES = 24, 1_000_000  # the paper's grid, each pair at OPUS-100's cap


def freedict_corpus(cache: Path) -> Path:
    """train/dev/test.{de,en} from the Debian package (fetched once into `cache`)."""
    out = cache / "corpus"
    if not (out / "train.de").exists():
        from data_prep.freedict import build_corpus, fetch_deb

        build_corpus(fetch_deb(cache / "freedict"), out)
    return out


def cipher(index: int) -> dict[int, int]:
    """A letter permutation per pair (pair 0: none), upper case following lower case."""
    if index == 0:
        return {}
    letters = list(string.ascii_lowercase)
    shuffled = letters[:]
    random.Random(index).shuffle(shuffled)
    table = {ord(a): b for a, b in zip(letters, shuffled, strict=True)}
    table |= {ord(a.upper()): b.upper() for a, b in zip(letters, shuffled, strict=True)}
    return table


def write_pair(
    sentences: list[tuple[str, str]], folder: Path, code: str, index: int, lines: dict[str, int]
) -> None:
    """One pair's splits in OPUS-100's layout, where data prep reads them (the folder
    names the codes in alphabetical order: `af-en`, but `en-ga`)."""
    rng = random.Random(f"{code}-{lines['train']}")
    table = cipher(index)
    for split, count in lines.items():
        src_path, tgt_path = opus100_files(folder / "v1.0", code, "en", split)
        src_path.parent.mkdir(parents=True, exist_ok=True)
        with open(src_path, "w") as src, open(tgt_path, "w") as tgt:
            for _ in range(count):
                chosen = rng.sample(sentences, rng.choice((1, 2)))
                src.write(" ".join(s for s, _ in chosen).translate(table) + "\n")
                tgt.write(" ".join(t for _, t in chosen) + "\n")


def make_corpus(
    freedict: Path, out: Path, pairs: int, lines: int, dev_lines: int = DEV_LINES
) -> list[str]:
    sentences = []
    for split in ("train", "dev", "test"):
        de = (freedict / f"{split}.de").read_text(encoding="utf-8").splitlines()
        en = (freedict / f"{split}.en").read_text(encoding="utf-8").splitlines()
        sentences += list(zip(de, en, strict=True))
    codes = list(CODES[:pairs])
    for index, code in enumerate(codes):
        write_pair(sentences, out, code, index, {"train": lines, "dev": dev_lines})
    return codes


def _is_aligner(proc: psutil.Process) -> bool:
    try:
        return proc.name() == "eflomal" or "data_prep.align" in proc.cmdline()
    except psutil.Error:
        return False


class MemorySampler:
    """Peak RSS, summed per sample, of the build's own processes and of the aligner's."""

    def __init__(self, proc: psutil.Process, every: float = 0.05) -> None:
        self.proc, self.every = proc, every
        self.peak = {"build": 0, "eflomal": 0}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            totals = {"build": 0, "eflomal": 0}
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
            except psutil.Error:
                procs = []
            aligners = {p.pid for p in procs if _is_aligner(p)}
            for p in procs:
                try:
                    ancestry = {p.pid} | {a.pid for a in p.parents()}
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                totals["eflomal" if ancestry & aligners else "build"] += rss
            for key, value in totals.items():
                self.peak[key] = max(self.peak[key], value)
            time.sleep(self.every)

    def stop(self) -> dict[str, float]:
        self._done.set()
        self._thread.join()
        return {key: value / 2**20 for key, value in self.peak.items()}


def run_build(
    root: Path, codes: list[str], tokenizer: str, out: Path, workers: int, aligner: str
) -> dict:
    """One cold-cache build; its wall time, CPU seconds, peak memory and manifest timings."""
    pairs = "[" + ", ".join(f"{code}-en" for code in codes) + "]"
    command = [
        sys.executable, "-m", "data_prep", "build", "opus100-supervised",
        f"corpus.path={root}", f"pairs={pairs}", f"tokenizer={tokenizer}",
        "curriculum=MT+Align->MT", f"workers={workers}", "max_seq_len=256",
        f"align.aligner={aligner}",
        "--cache", str(out / "cache"), "--out", str(out / "shards"),
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    meter = LoadMeter.start()
    started = time.perf_counter()
    proc = psutil.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    sampler = MemorySampler(proc)
    _, stderr = proc.communicate()
    wall = time.perf_counter() - started
    others = meter.stop()[1]
    peak = sampler.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{stderr.decode()[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    timings = manifest["timings"]
    return {
        "train_pairs": timings["train_pairs"],
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "cores_busy": round(cpu / wall, 2),
        "other_processes_cpu_share": round(others, 2),
        "peak_rss_mib": {k: round(v, 1) for k, v in peak.items()},
        "phases_s": timings["phases"],
        "steps_s": timings["steps"],
        "pairs_per_s": round(timings["train_pairs"] / wall, 1),
        "samples": sum(stage["samples"] for stage in manifest["stages"]),
    }


def cpu_factor(result: dict) -> float:
    """CPU seconds of the whole build per second of its phases. Phase seconds are
    measured in each process by the clock, so when other processes take the CPUs they
    stretch; scaling them by this factor turns them into CPU seconds (every process of
    the build, eflomal included, is slowed alike by the same neighbours)."""
    return result["cpu_s"] / max(sum(result["phases_s"].values()), 1e-9)


def estimate(results: list[dict], cores: int) -> float:
    """Seconds for OPUS100_PAIRS pairs of OPUS100_LINES lines on `cores` idle cores.

    From CPU seconds (`cpu_factor`): eflomal's per pair, extrapolated with the power law
    fitted between the smallest and largest size (it runs about 5000 / sqrt(lines)
    iterations, so it grows as sqrt(lines); a noisy fit is held within [0.5, 1]); the
    other phases' per line at the largest size (linear). Pairs align in parallel, one
    core each; everything else is spread over all cores, except writing the shards (one
    process)."""
    small, large = results[0], results[-1]
    n_pairs = len(large["per_pair_align_s"])
    lines_small = small["train_pairs"] / n_pairs
    lines_large = large["train_pairs"] / n_pairs
    a_small = cpu_factor(small) * sum(small["per_pair_align_s"]) / n_pairs
    a_large = cpu_factor(large) * sum(large["per_pair_align_s"]) / n_pairs
    measured = math.log(a_large / a_small) / math.log(lines_large / lines_small)
    exponent = min(1.0, max(0.5, measured))
    align_one = a_large * (OPUS100_LINES / lines_large) ** exponent
    waves = math.ceil(OPUS100_PAIRS / cores)
    total_lines = OPUS100_PAIRS * OPUS100_LINES
    factor = cpu_factor(large) / large["train_pairs"]
    per_line = {p: seconds * factor for p, seconds in large["phases_s"].items()}
    parallel = sum(per_line[p] for p in per_line if p not in ("align", "write"))
    return waves * align_one + total_lines * (parallel / cores + per_line["write"])


def report(results: list[dict], sizes: list[int]) -> dict[str, Any]:
    print(
        f"{'size':>5} {'pairs':>8} {'wall s':>8} {'pairs/s':>8} {'cores':>6} "
        f"{'build MiB':>10} {'eflomal MiB':>12}  phases (busy s, summed over processes)"
    )
    for size, r in zip(sizes, results, strict=True):
        phases = " ".join(f"{k}={v:.1f}" for k, v in r["phases_s"].items())
        print(
            f"{size:>4}x {r['train_pairs']:>8} {r['wall_s']:>8.1f} {r['pairs_per_s']:>8.1f} "
            f"{r['cores_busy']:>6.2f} {r['peak_rss_mib']['build']:>10.1f} "
            f"{r['peak_rss_mib']['eflomal']:>12.1f}  {phases}"
        )
    first, last = results[0], results[-1]
    scale = last["train_pairs"] / first["train_pairs"]
    summary: dict[str, Any] = {
        "corpus_ratio": round(scale, 2),
        "wall_per_pair_ratio": round(
            (last["wall_s"] / last["train_pairs"]) / (first["wall_s"] / first["train_pairs"]), 3
        ),
        "build_memory_ratio": round(
            last["peak_rss_mib"]["build"] / first["peak_rss_mib"]["build"], 3
        ),
    }
    for r in results:
        others = sum(v for k, v in r["phases_s"].items() if k != "align")
        r["others_vs_align"] = round(others / max(r["phases_s"]["align"], 1e-9), 3)
        r["cpu_per_pair_ms"] = round(1000 * r["cpu_s"] / r["train_pairs"], 2)
    print(
        "CPU ms per pair (whole build, eflomal included): "
        + ", ".join(f"{s}x {r['cpu_per_pair_ms']}" for s, r in zip(sizes, results, strict=True))
    )
    print(
        f"{scale:.0f}x corpus: wall time per pair x{summary['wall_per_pair_ratio']} "
        f"(target <= 1: linear or better), build peak memory "
        f"x{summary['build_memory_ratio']} (target <= 1.2)"
    )
    print(
        "phases other than eflomal / eflomal (busy seconds): "
        + ", ".join(f"{s}x {r['others_vs_align']}" for s, r in zip(sizes, results, strict=True))
        + " (target < 1)"
    )
    if len(results) > 1:
        summary["opus100_estimate_s"] = {c: round(estimate(results, c)) for c in (2, 16, 64)}
        print(
            f"estimated OPUS-100 build ({OPUS100_PAIRS} pairs x {OPUS100_LINES:,} lines): "
            + ", ".join(
                f"{c} cores {s / 3600:.1f} h" for c, s in summary["opus100_estimate_s"].items()
            )
        )
    return summary


def _save(out: Path, args: argparse.Namespace, results: list[dict], summary: dict) -> None:
    """scale.json, rewritten after every size (a long run keeps what it measured)."""
    record = {
        "command": " ".join(sys.argv),
        "cpu_count": os.cpu_count(),
        "phases": [*PHASES, *STAGE_PHASES],
        "sizes": args.sizes[: len(results)],
        "results": results,
        "summary": summary,
    }
    (out / "scale.json").write_text(json.dumps(record, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=4, help=f"language pairs (<= {len(CODES)})")
    parser.add_argument("--base", type=int, default=2000, help="train lines per pair at 1x")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--aligner", default="eflomal", choices=["eflomal", "fast_align"])
    parser.add_argument("--dev-lines", type=int, default=DEV_LINES, help="dev lines per pair")
    parser.add_argument("--corpus", help="a FreeDict split folder (default: build from the .deb)")
    parser.add_argument("--tokenizer", help="HF tokenizer folder (default: train one locally)")
    parser.add_argument("--out", help="keep corpora, shards and scale.json here")
    parser.add_argument("--report", help="only print the report of this scale.json")
    args = parser.parse_args()
    if args.report:
        record = json.loads(Path(args.report).read_text())
        report(record["results"], record["sizes"])
        return
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        out = Path(args.out or tmp)
        out.mkdir(parents=True, exist_ok=True)
        cache = Path(os.environ.get("ALIGNINSTRUCT_CACHE", out / "cache"))
        freedict = Path(args.corpus) if args.corpus else freedict_corpus(cache)
        tokenizer = args.tokenizer
        if tokenizer is None:
            from data_prep.tokenizer import train_tokenizer

            files = [freedict / "train.de", freedict / "train.en"]
            tokenizer = str(train_tokenizer(files, out / "tokenizer", vocab_size=4000))
        results = []
        for size in args.sizes:
            root = out / f"x{size}"
            codes = make_corpus(
                freedict, root / "corpus", args.pairs, args.base * size, args.dev_lines
            )
            result = run_build(root / "corpus", codes, tokenizer, root, args.workers, args.aligner)
            manifest = json.loads((root / "shards" / "manifest.json").read_text())
            result["per_pair_align_s"] = [
                manifest["timings"]["per_pair"][f"{code}-en"]["align"] for code in codes
            ]
            results.append(result)
            print(f"{size}x done: {json.dumps(result)}", flush=True)
            _save(out, args, results, {})
        _save(out, args, results, report(results, args.sizes[: len(results)]))
        print(f"written: {out / 'scale.json'}")


if __name__ == "__main__":
    main()
