"""`python -m eval report` on four runs ({full, LoRA} x {MT, MT+Align}) scored by the real
`score_all` on a small de<->en test set: what was compared, significance equal to the
sacrebleu command line, AlignInstruct accuracy per run, loss curves, plots, labels."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eval.config import EvalConfig
from eval.directions import directions, load_grid, read_test_sets
from eval.report import _delta, read_curves
from eval.run import score_all
from tests.conftest import REPO_ROOT

WORDS = {
    "de": ["der", "die", "das", "haus", "hund", "katze", "baum", "wasser", "brot", "stadt"],
    "en": ["the", "a", "house", "dog", "cat", "tree", "water", "bread", "city", "night"],
}
# run: (finetune, curriculum, error rate of its outputs; lower is better)
RUNS = {
    "full-mt": ("full", "MT", 0.45),
    "full-mt-align": ("full", "MT+Align->MT", 0.15),
    "lora-mt": ("lora", "MT", 0.47),
    "lora-mt-align": ("lora", "MT+Align->MT", 0.4),
}
N = 120


def sentences(lang: str, rng: random.Random) -> list[str]:
    return [" ".join(rng.choices(WORDS[lang], k=rng.randint(4, 10))) for _ in range(N)]


def noisy(refs: list[str], lang: str, rate: float, rng: random.Random) -> list[str]:
    return [
        " ".join(w if rng.random() > rate else rng.choice(WORDS[lang]) for w in r.split())
        for r in refs
    ]


def write_build(folder: Path, curriculum: str) -> None:
    kinds = [stage.lower().split("+") for stage in curriculum.split("->")]
    counts = {"mt": 2400, "align": 1200}
    stages = [
        {"name": f"stage{i}", "kinds": k, "by_kind": {kind: counts[kind] for kind in k}}
        for i, k in enumerate(kinds)
    ]
    manifest = {"recipe": "freedict", "curriculum": curriculum, "stages": stages}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def write_run(root: Path, name: str, corpus: Path, seed: int) -> Path:
    finetune, curriculum, rate = RUNS[name]
    run = root / name
    rng = random.Random(seed)
    for src, tgt in (("de", "en"), ("en", "de")):
        refs = (corpus / f"test.{tgt}").read_text().splitlines()
        hyps = run / "eval" / "hyps" / f"{src}-{tgt}.txt"
        hyps.parent.mkdir(parents=True, exist_ok=True)
        hyps.write_text("\n".join(noisy(refs, tgt, rate, rng)) + "\n")
    build = root / "builds" / curriculum.replace("->", "_").replace("+", "-")
    write_build(build, curriculum)
    lora = {"rank": 16, "alpha": 32, "target_modules": ["query_key_value", "dense"]}
    config = {"data": str(build), "model": {"name": str(root / "base"), "tiny": False},
              "finetune": finetune, "lora": lora}  # fmt: skip
    (run / "config.json").write_text(json.dumps(config))
    trainable = 356_224 if finetune == "full" else 12_288
    summary = {"finetune": finetune, "model": str(root / "base"), "total_parameters": 356_224,
               "trainable_parameters": trainable, "steps": 60, "tokens": 90_000,
               "tokens_per_second": 1500.0, "peak_memory_mb": 600.0,
               "wall_seconds": 95.0}  # fmt: skip
    (run / "summary.json").write_text(json.dumps(summary))
    start = 7.9 if finetune == "full" else 7.0
    rows = [{"step": s, "stage": "stage0", "loss": start - rate * s / 20, "lr": 1e-3}
            for s in range(10, 70, 10)]  # fmt: skip
    rows += [{"step": s, "stage": "stage0", "dev_loss": start + 0.2 - s / 40, "dev_tokens": 900}
             for s in (20, 40, 60)]  # fmt: skip
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    align = 0.9 if "align" in name else 0.5
    (run / "eval" / "align.json").write_text(json.dumps({
        "samples": 400, "accuracy": align, "precision_true": align, "recall_true": 0.8,
        "true_share": 0.5, "predicted_true_share": 0.5,
    }))  # fmt: skip
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    corpus = root / "corpus"
    corpus.mkdir()
    rng = random.Random(0)
    for lang in ("de", "en"):
        (corpus / f"test.{lang}").write_text("\n".join(sentences(lang, rng)) + "\n")
    grid = load_grid("freedict", [f"corpus.path={corpus}/"])
    found = directions(grid)
    test_sets = read_test_sets(found)
    result = {}
    for seed, name in enumerate(RUNS):
        result[name] = write_run(root, name, corpus, seed)
        score_all(EvalConfig(out=str(result[name] / "eval")), grid, found, test_sets)
    result["corpus"] = corpus
    return result


def eval_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eval", *map(str, args)], cwd=REPO_ROOT, capture_output=True,
        text=True, timeout=600, check=False, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def four(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("four") / "report"
    result = eval_cli("report", *(runs[n] for n in RUNS), "--baseline", "full-mt", "--out", out,
                      "--resamples", "300", "--seed", "9")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_opens_with_what_was_compared(four: Path) -> None:
    text = (four / "report.md").read_text()
    compared = text.split("## What was compared")[1].split("## Results")[0]
    assert "| lora-mt-align |" in compared and "(356,224 params)" in compared
    assert "LoRA r=16 alpha=32 on query_key_value, dense, 12,288 trainable" in compared
    assert "full, 356,224 trainable" in compared
    assert "freedict mt 2,400 + align 1,200 -> mt 2,400" in compared
    assert "| 60 | 1.6 min |" in compared
    assert "**These are toy models**" in compared and "docs/training.md" in compared


@pytest.mark.integration
def test_significance_equals_the_sacrebleu_command_line(four: Path, runs: dict[str, Path]) -> None:
    report = json.loads((four / "report.json").read_text())
    settings = report["significance"]["settings"]
    assert settings["paired"] == "bs" and settings["resamples"] == 300 and settings["seed"] == 9
    tested = report["significance"]["directions"]["de-en"]
    base, system = runs["full-mt"] / "eval", runs["full-mt-align"] / "eval"
    cli = subprocess.run(
        [Path(sys.executable).with_name("sacrebleu"), str(base / "refs" / "de-en.txt"), "-i",
         str(base / "hyps" / "de-en.txt"), str(system / "hyps" / "de-en.txt"), "-m", "bleu",
         "chrf", "--chrf-word-order", "2", "-tok", "13a", "--paired-bs", "--paired-bs-n", "300",
         "-f", "json"],
        capture_output=True, text=True, check=True, env=dict(os.environ, SACREBLEU_SEED="9"),
    )  # fmt: skip
    theirs = json.loads(cli.stdout)[1]
    for metric, name in (("bleu", "BLEU"), ("chrf", "chrF2++")):
        mine = tested[metric]["systems"]["full-mt-align"]
        assert (mine["score"], mine["mean"], mine["ci"], mine["p_value"]) == (
            theirs[name]["score"], theirs[name]["mean"], theirs[name]["ci"],
            theirs[name]["p_value"],
        )  # fmt: skip
        assert mine["significant"]
    assert not tested["chrf"]["systems"]["lora-mt"]["significant"]


def test_tables_mark_significant_deltas(four: Path) -> None:
    text = (four / "report.md").read_text()
    chrf = text.split("## chrF++")[1].split("##")[0]
    row = next(line for line in chrf.splitlines() if line.startswith("| de-en |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # base, then (score, delta, p) for full-mt-align, lora-mt, lora-mt-align
    assert " ± " in cells[1] and " ± " in cells[2]
    assert cells[3].startswith("+") and cells[3].endswith(" *") and cells[4].endswith(" *")
    assert not cells[6].endswith("*")  # lora-mt: barely differs
    assert "**full-mt-align** vs full-mt: bleu:" in text
    assert "significant in 2 of 2 directions: 2 better, 0 worse; Holm-Bonferroni-corrected" in text
    assert "paired bootstrap resampling" in text and "300 resamples, seed 9" in text
    assert "Holm-Bonferroni correction over the 2 directions" in text


def test_off_target_table_and_headline(four: Path) -> None:
    text = (four / "report.md").read_text()
    table = text.split("## Off-target rate")[1].split("##")[0]
    assert "| de-en |" in table and "| **avg all** |" in table and "fastText lid.176" in table
    report = json.loads((four / "report.json").read_text())
    base = report["runs"]["full-mt"]["scores"]["averages"]["all"]["off_target"]
    assert f"off-target %: en->X {base:.2f} -> " in text


def test_p_values_are_corrected_over_the_directions(runs: dict[str, Path], tmp_path: Path) -> None:
    """Raw p-values stay; `p_adjusted` is Holm's over the directions (two here), and
    --correction none leaves them as they are."""
    from eval.report import report
    from eval.significance import PairedSettings, adjusted_p_values

    paths = [str(runs["full-mt"]), str(runs["lora-mt"])]
    settings = PairedSettings(resamples=200, correction="holm")
    report(paths, tmp_path / "holm", settings=settings)
    found = json.loads((tmp_path / "holm" / "report.json").read_text())["significance"]
    results = [found["directions"][d]["bleu"]["systems"]["lora-mt"] for d in ("de-en", "en-de")]
    raw = [r["p_value"] for r in results]
    assert [r["p_adjusted"] for r in results] == adjusted_p_values(raw, "holm")
    assert all(r["significant"] == (r["p_adjusted"] < 0.05) for r in results)
    none = PairedSettings(resamples=200, correction="none")
    text = report(paths, tmp_path / "none", settings=none)
    assert "uncorrected for the 2 directions" in text and "-corrected" not in text


def test_align_accuracy_beside_mt_only_runs(four: Path) -> None:
    text = (four / "report.md").read_text()
    table = text.split("## AlignInstruct accuracy")[1].split("##")[0]
    assert "| full-mt | mt (no AlignInstruct: untrained baseline) | 0.500 |" in table
    assert "| lora-mt-align | align+mt | 0.900 |" in table


def test_plots_are_written(four: Path) -> None:
    text = (four / "report.md").read_text()
    for png in ("bleu_directions.png", "chrf_directions.png", "averages.png", "losses.png",
                "align.png"):  # fmt: skip
        assert (four / png).stat().st_size > 5000 and f"]({png})" in text


@pytest.mark.integration
def test_ar_test_and_two_eval_folders_of_one_run(runs: dict[str, Path], tmp_path: Path) -> None:
    """Issue 7: two eval folders of the same run get derivable labels."""
    run = runs["full-mt"]
    shutil.copytree(run / "eval", run / "eval-beam4", dirs_exist_ok=True)
    out = tmp_path / "r"
    result = eval_cli("report", run / "eval", run / "eval-beam4", "--out", out,
                      "--paired", "ar", "--resamples", "200")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert list(report["runs"]) == ["full-mt/eval", "full-mt/eval-beam4"]
    assert report["significance"]["settings"]["paired"] == "ar"
    same = report["significance"]["directions"]["en-de"]["bleu"]["systems"]["full-mt/eval-beam4"]
    # identical outputs: sacreBLEU's AR gives them its smallest p-value, never "significant"
    assert same["p_value"] == pytest.approx(1 / 201) and not same["significant"]
    named = eval_cli("report", run / "eval", run / "eval-beam4", "--labels", "greedy,beam",
                     "--baseline", "beam", "--out", tmp_path / "n")  # fmt: skip
    assert named.returncode == 0, named.stderr[-2000:]
    assert "# Comparison against beam" in (tmp_path / "n" / "report.md").read_text()
    bad = eval_cli("report", run / "eval", run / "eval-beam4", "--labels", "one", "--out", out)
    assert bad.returncode == 2 and "give 2 different comma-separated labels" in bad.stderr


def test_without_references_the_report_says_so(runs: dict[str, Path], tmp_path: Path) -> None:
    from eval.report import report

    old = tmp_path / "old"
    for name in ("full-mt", "lora-mt"):
        shutil.copytree(runs[name] / "eval", old / name / "eval")
        shutil.rmtree(old / name / "eval" / "refs")
    text = report([str(old / "full-mt"), str(old / "lora-mt")], tmp_path / "out")
    assert "No significance tests" in text and "rescore" in text


def test_comet_segments_are_tested(runs: dict[str, Path], tmp_path: Path) -> None:
    from eval.report import report

    copies = {}
    for shift, name in ((0.0, "full-mt"), (0.08, "full-mt-align")):
        copies[name] = tmp_path / name
        shutil.copytree(runs[name], copies[name])
        scores_path = copies[name] / "eval" / "scores.json"
        scores = json.loads(scores_path.read_text())
        for direction in ("de-en", "en-de"):
            rng = random.Random(direction)
            segments = [0.5 + rng.gauss(0, 0.1) + shift for _ in range(N)]
            path = copies[name] / "eval" / "comet" / f"{direction}.txt"
            path.parent.mkdir(exist_ok=True)
            path.write_text("".join(f"{s!r}\n" for s in segments))
            scores["directions"][direction]["comet"] = round(100 * sum(segments) / N, 2)
        scores["averages"]["all"]["comet"] = 50.0
        scores_path.write_text(json.dumps(scores))
    text = report([str(copies["full-mt"]), str(copies["full-mt-align"])], tmp_path / "out")
    assert "## COMET" in text
    found = json.loads((tmp_path / "out" / "report.json").read_text())["significance"]
    comet = found["directions"]["de-en"]["comet"]["systems"]["full-mt-align"]
    assert comet["significant"] and comet["score"] == pytest.approx(
        json.loads((copies["full-mt-align"] / "eval" / "scores.json").read_text())["directions"][
            "de-en"
        ]["comet"],
        abs=0.01,
    )


def test_uncovered_comet_is_marked_and_not_tested(tmp_path: Path) -> None:
    from eval.report import Run, comet_note, metric_table

    scores = {
        "directions": {"en-tt": {"comet": 10.0, "comet_covered": False},
                       "en-km": {"comet": 70.0, "comet_covered": True}},
        "averages": {"all": {"comet": 70.0, "directions": 2, "comet_directions": 1}},
    }  # fmt: skip
    base = Run("base", tmp_path, tmp_path, None, scores)
    table = metric_table([base], base, "comet", {})
    assert any(line.startswith("| en-tt † | 10.00") for line in table)
    assert any(line.startswith("| en-km | 70.00") for line in table)
    assert not base.comet_tested("en-tt") and base.comet_tested("en-km")
    assert "left out of the averages and tests" in comet_note(base)[1]
    asked = Run("base", tmp_path, tmp_path, None, {**scores, "comet_uncovered_in_averages": True})
    assert asked.comet_tested("en-tt") and "included in the averages" in comet_note(asked)[1]


def test_loss_curves_keep_the_last_row_of_a_step(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    rows = [{"step": 10, "loss": 5.0}, {"step": 20, "loss": 4.0}, {"step": 10, "loss": 4.5},
            {"step": 20, "dev_loss": 4.2, "dev_tokens": 10}]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 30, "lo')
    assert read_curves(path) == {"loss": [(10, 4.5), (20, 4.0)], "dev_loss": [(20, 4.2)]}


def test_toy_note_only_for_toy_models(tmp_path: Path) -> None:
    from eval.report import Run, toy_note

    def run(total: int, tiny: bool = False) -> Run:
        summary = {"total_parameters": total, "wall_seconds": 120.0}
        return Run("r", tmp_path, tmp_path, None, {}, summary, {"model": {"tiny": tiny}})

    assert toy_note([run(1_065_314_304), run(559_214_592)]) == []
    assert "toy models** (at most 356,224 parameters" in toy_note([run(356_224)])[1]
    assert "2.0 minutes" in toy_note([run(1_065_314_304, tiny=True)])[1]
    assert "adapts" not in toy_note([run(356_224)])[1]
    lora = {"rank": 16, "target_modules": ["query_key_value", "dense"]}
    summary = {"total_parameters": 388_992, "trainable_parameters": 32_768, "wall_seconds": 60.0}
    adapted = Run("lora-mt", tmp_path, tmp_path, None, {}, summary,
                  {"finetune": "lora", "lora": lora})  # fmt: skip
    note = toy_note([run(356_224), adapted])[1]
    assert "LoRA (lora-mt) adapts query_key_value, dense at rank 16: 32,768 trainable" in note
    assert "8% of the model, chosen so that it can learn at this size" in note


def test_a_difference_below_a_hundredth_does_not_read_as_zero() -> None:
    assert _delta(0.0059, 0.0078) == "-0.0019"  # demo BLEU: marked significant, not "+0.00"
    assert (_delta(2.25, 1.98), _delta(1.0, 1.0), _delta(None, 1.0)) == ("+0.27", "+0.00", "")


def test_table_delta_uses_the_unrounded_scores(tmp_path: Path) -> None:
    from eval.report import Run, metric_table

    def run(label: str, rounded: float) -> Run:
        scores = {"directions": {"de-en": {"bleu": rounded}}, "averages": {}}
        return Run(label, tmp_path, tmp_path, None, scores)

    base, worse = run("base", 0.01), run("worse", 0.01)  # both round to 0.01
    tests = {"de-en": {"bleu": {"systems": {
        "base": {"score": 0.0078, "mean": 0.0078, "ci": 0.0005, "p_value": None,
                 "significant": None},
        "worse": {"score": 0.0059, "mean": 0.0059, "ci": 0.0004, "p_value": 0.001,
                  "significant": True},
    }}}}  # fmt: skip
    row = metric_table([base, worse], base, "bleu", tests)[2]
    assert "| -0.0019 * | 0.001 * |" in row  # was "+0.00 *": the wrong sign, and zero


def test_sanity_section_reports_the_memorisation_check(tmp_path: Path) -> None:
    from core.typed_config import ConfigError
    from eval.report import sanity_section

    def scores(de_en: float, en_de: float) -> Path:
        folder = tmp_path / f"{de_en}-{en_de}"
        folder.mkdir()
        directions = {"de-en": {"bleu": de_en, "sentences": 32},
                      "en-de": {"bleu": en_de, "sentences": 32}}  # fmt: skip
        (folder / "scores.json").write_text(json.dumps({"directions": directions}))
        return folder

    passed = "\n".join(sanity_section(scores(100.0, 98.3)))
    assert "memorise 32 training pairs" in passed and "de-en 100.0, en-de 98.3" in passed
    assert "passes" in passed and "FAILS" not in passed
    failed = "\n".join(sanity_section(scores(100.0, 41.0)))
    assert "**FAILS**" in failed and "cannot be trusted" in failed
    with pytest.raises(ConfigError, match=r"no scores\.json"):
        sanity_section(tmp_path / "missing")
