"""bench/bench_scale.py at a tiny size: the corpus it generates, and one real run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.bench_scale import make_corpus
from data_prep.contract.readers import opus100_files
from tests.conftest import REPO_ROOT


def test_generated_corpus_has_opus100_layout_and_distinct_pairs(
    freedict_corpus: Path, tmp_path: Path
) -> None:
    """Four pairs (the default): codes after `en` are stored as `en-xx`, as OPUS-100 does
    and data prep reads."""
    codes = make_corpus(freedict_corpus, tmp_path, pairs=4, lines=300)
    assert codes == ["af", "cy", "ga", "gd"]
    assert (tmp_path / "v1.0" / "supervised" / "en-ga" / "opus.en-ga-train.ga").is_file()
    texts = {}
    for code in codes:
        src_file, tgt_file = opus100_files(tmp_path, code, "en", "train")
        src = src_file.read_text(encoding="utf-8").splitlines()
        tgt = tgt_file.read_text(encoding="utf-8").splitlines()
        assert len(src) == len(tgt) == 300 and len(set(zip(src, tgt, strict=True))) > 290
        assert all(path.is_file() for path in opus100_files(tmp_path, code, "en", "dev"))
        texts[code] = set(" ".join(src).split())
    # pair 1's source side is enciphered: almost no word is shared with pair 0's
    assert len(texts["af"] & texts["cy"]) < 0.1 * len(texts["af"])


def test_bench_scale_runs_and_reports(
    freedict_corpus: Path, tokenizer_dir: Path, tmp_path: Path
) -> None:
    """fast_align (in the build's own processes) keeps it cheap: eflomal runs hundreds of
    iterations on a corpus this small."""
    command = [
        sys.executable, "bench/bench_scale.py", "--pairs", "2", "--base", "100",
        "--sizes", "1", "2", "--workers", "2", "--dev-lines", "20", "--aligner", "fast_align",
        "--corpus", str(freedict_corpus), "--tokenizer", str(tokenizer_dir), "--out", str(tmp_path),
    ]  # fmt: skip
    run = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "estimated OPUS-100 build" in run.stdout
    record = json.loads((tmp_path / "scale.json").read_text())
    small, large = record["results"]
    assert small["train_pairs"] < large["train_pairs"] <= 2 * 2 * 100
    for result in (small, large):
        assert result["peak_rss_mib"]["build"] > 50 and result["peak_rss_mib"]["eflomal"] == 0
        assert result["phases_s"]["align"] > 0 and result["phases_s"]["encode"] > 0
        assert len(result["per_pair_align_s"]) == 2
    assert set(record["summary"]["opus100_estimate_s"]) == {"2", "16", "64"}
