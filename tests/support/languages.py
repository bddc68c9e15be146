"""Nine languages in nine scripts through the whole pipeline, at toy scale.

The sentences of tests/assets/scripts/ (zh, ja, th, km, my, ru, ar, hi, fr, each with
English; written for the tests): 10 training and 2 held-out pairs per language, one
`data_prep build` (MT+Align->MT), a tiny BLOOM trained on the MT stage
(tests/support/quick_train.py) and `eval run` on the held-out pairs in both directions.
Used by tests/test_languages.py; run by hand to print the held-out samples:

    python -m tests.support.languages --out /tmp/languages
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import yaml

from data_prep.align import align
from data_prep.build import PairData, aligned_pairs, default_cache_dir
from data_prep.cleaning import CleanReport
from data_prep.contract.languages import language_name
from data_prep.contract.templates import DEFAULT_TEMPLATES
from data_prep.instructions import BuildSettings, InstructionBuilder, Sample
from data_prep.recipe import load_recipe
from data_prep.tokenizer import train_tokenizer

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "tests" / "assets" / "scripts"
LANGUAGES: tuple[str, ...] = ("zh", "ja", "th", "km", "my", "ru", "ar", "hi", "fr")
N_TRAIN = 10


def write_corpora(out: Path) -> Path:
    """`out/{lang}-en/{train,test}.{lang,en}` from the asset sentences."""
    for lang in LANGUAGES:
        rows = [
            line.split("\t")
            for line in (SCRIPTS / f"{lang}-en.tsv").read_text("utf-8").splitlines()
        ]
        folder = out / f"{lang}-en"
        folder.mkdir(parents=True, exist_ok=True)
        for split, part in (("train", rows[:N_TRAIN]), ("test", rows[N_TRAIN:])):
            for index, code in enumerate((lang, "en")):
                text = "".join(row[index] + "\n" for row in part)
                (folder / f"{split}.{code}").write_text(text, encoding="utf-8")
    return out


def _corpora(corpus: Path) -> dict[str, dict[str, str]]:
    return {f"{lang}-en": {"format": "files", "path": f"{corpus}/{lang}-en/"} for lang in LANGUAGES}


def write_recipe(corpus: Path, tokenizer: Path, path: Path) -> Path:
    recipe = {
        "name": "scripts",
        "pairs": [f"{lang}-en" for lang in LANGUAGES],
        "corpora": _corpora(corpus),
        "tokenizer": str(tokenizer),
        "curriculum": "MT+Align->MT",
        "ratios": {"mt": 1.0, "align": 2.0},
        "clean": {"dedup": True},
        "align": {"aligner": "eflomal", "symmetrization": "grow-diag-final-and"},
        "align_instruct": {"min_consistency": 0.0},  # 10 lines give no link statistics
        "mixing": {"method": "temperature", "temperature": 5.0},
        "max_seq_len": 256,
        "workers": 1,
    }
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    return path


def write_grid(corpus: Path, path: Path) -> Path:
    grid = {
        "name": "scripts",
        "split": "test",
        "pairs": [d for lang in LANGUAGES for d in (f"{lang}-en", f"en-{lang}")],
        "corpora": _corpora(corpus),
    }
    path.write_text(yaml.safe_dump(grid), encoding="utf-8")
    return path


def cli(module: str, *args: str | Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], cwd=REPO_ROOT, capture_output=True,
        text=True, timeout=timeout, check=False, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip


def prepare(out: Path) -> tuple[Path, Path]:
    """Corpora, tokenizer, recipe and grid under `out`; returns (recipe, grid)."""
    corpus = write_corpora(out / "corpus")
    files = [corpus / f"{lang}-en" / f"train.{code}" for lang in LANGUAGES for code in (lang, "en")]
    tokenizer = train_tokenizer(files, out / "tokenizer", vocab_size=2000)
    return write_recipe(corpus, tokenizer, out / "recipe.yaml"), write_grid(
        corpus, out / "grid.yaml"
    )


def held_out_samples(corpus: Path, eval_dir: Path, per_direction: int = 2) -> str:
    """Markdown lines: source, reference and hypothesis of the held-out pairs."""
    lines = []
    for lang in LANGUAGES:
        for src, tgt in ((lang, "en"), ("en", lang)):
            sources = (corpus / f"{lang}-en" / f"test.{src}").read_text("utf-8").splitlines()
            refs = (corpus / f"{lang}-en" / f"test.{tgt}").read_text("utf-8").splitlines()
            hyps = (eval_dir / "hyps" / f"{src}-{tgt}.txt").read_text("utf-8").splitlines()
            for s, r, h in list(zip(sources, refs, hyps, strict=True))[:per_direction]:
                lines.append(f"| {src}-{tgt} | {s} | {r} | {h} |")
    return "\n".join(
        ["| direction | source | reference | output |", "| --- | --- | --- | --- |", *lines]
    )


def instruction_samples(out: Path, cache: Path, per_kind: int = 1) -> list[Sample]:
    """AlignInstruct, HintInstruct and ReviseInstruct samples of the cleaned training
    pairs of the build under `out`, made as `build` makes them (the alignments are read
    from the alignment cache the build filled)."""
    recipe = load_recipe(out / "shards" / "recipe.yaml")
    shards = out / "shards"
    settings = BuildSettings(
        templates=DEFAULT_TEMPLATES,
        names={code: language_name(code) for code in (*LANGUAGES, "en")},
        ratios={"align": 1.0, "hint": 1.0, "revise": 1.0},
        align=recipe.align_instruct,
        hint=recipe.hint_instruct,
        revise=recipe.revise_instruct,
        both_directions=True,
        seed=recipe.seed,
        stage="samples",
    )
    found: list[Sample] = []
    for lang in LANGUAGES:
        files = [shards / "corpus" / f"{lang}-en.{code}" for code in (lang, "en")]
        lines = [path.read_text("utf-8").splitlines() for path in files]
        pair = PairData(lang, "en", *files, CleanReport())
        pair.alignment = align(*lines, recipe.align, cache / "align", (lang, "en"))
        builder = InstructionBuilder(settings, ["align", "hint", "revise"])
        kept: dict[str, int] = {}
        for aligned in aligned_pairs(pair, {"intersection", "union"}):
            for sample in builder.samples(aligned):
                if kept.get(sample.kind, 0) < per_kind and sample.src == lang:
                    kept[sample.kind] = kept.get(sample.kind, 0) + 1
                    found.append(sample)
    return found


def main() -> None:
    from tests.support.quick_train import quick_tiny_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=250)
    args = parser.parse_args()
    recipe, grid = prepare(args.out)
    shards, model, evaluated = args.out / "shards", args.out / "model", args.out / "eval"
    result = cli("data_prep", "build", recipe, "--out", shards, "--overwrite")
    print(result.stdout)
    result.check_returncode()
    quick_tiny_model(shards, model, steps=args.steps)
    result = cli("eval", "run", "--grid", grid, "--model", model, "--out", evaluated,
                 "--max-new-tokens", "24")  # fmt: skip
    result.check_returncode()
    print(held_out_samples(args.out / "corpus", evaluated))
    cache = Path(os.environ.get("ALIGNINSTRUCT_CACHE") or default_cache_dir())
    for sample in instruction_samples(args.out, cache):
        print(f"--- {sample.kind} {sample.src}-{sample.tgt}\n{sample.prompt}\n=>{sample.answer}")


if __name__ == "__main__":
    main()
