"""Side-by-side comparison of evaluated runs: what was compared, scores with paired
significance tests against the baseline, AlignInstruct accuracy, training cost, plots.

    python -m eval report runs/full-mt runs/full-mt-align runs/lora-mt --baseline full-mt \
        --out reports/cmp [--paired bs|ar] [--resamples N] [--seed S] [--labels a,b,c] \
        [--correction holm|bonferroni|none]

Each RUN is a training run folder (with `eval/scores.json`) or an eval folder (with
`scores.json`; the run's `summary.json`, `config.json` and `metrics.jsonl` are looked for
one level up). Labels are the run folder names; where two clash, the last two parts of
their paths (`full/eval`, `full/eval-beam4`); `--labels` names them explicitly. Per
direction, every system is tested against the baseline on BLEU and chrF++ (and COMET
where scored) with sacreBLEU's paired bootstrap (or approximate randomization) on the
`hyps/` and `refs/` that `eval run` wrote (`eval.significance`), against all references
where the test set has alternatives; "significant in k of N directions" is corrected for
the N comparisons (Holm-Bonferroni by default, `--correction`), the raw p-values kept.
COMET is tested and averaged only on directions its encoder covers, unless the scores
were made with `comet_uncovered_in_averages=true`. The off-target rate (eval.offtarget)
gets its own table. `align.json` (from `python -m eval align --out EVAL_FOLDER`) gives each
run's AlignInstruct accuracy. `--sanity EVAL_FOLDER` opens the report with a memorisation
check: the scores of a model that was trained on its own test pairs through the same
commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.families import family_named
from core.fileio import write_json, write_lines
from core.typed_config import ConfigError
from data_prep.contract.readers import CorpusError, read_lines
from eval.report_model import Run
from eval.report_plots import plot_all
from eval.scoring import ALTERNATIVES_SEPARATOR, METRICS, UNCOVERED_MARK
from eval.scoring import AVERAGE_GROUPS as AVERAGE_ROWS
from eval.significance import (
    CORRECTION_NAMES,
    PairedSettings,
    correct,
    paired_segment_tests,
    paired_text_tests,
)

COST_KEYS = (
    ("finetune", "fine-tuning", "{}"),
    ("trainable_parameters", "trainable params", "{:,}"),
    ("tokens", "tokens seen", "{:,}"),
    ("tokens_per_second", "tokens/s", "{:,.0f}"),
    ("peak_memory_mb", "peak memory (MB)", "{:,.0f}"),
    ("wall_seconds", "wall time (s)", "{:,.1f}"),
)
METRIC_TITLES = {"bleu": "BLEU", "chrf": "chrF++", "comet": "COMET"}
OFF_TARGET = "off_target"
# Below the smallest BLOOMZ (560m): a toy model, whose scores only show the pipeline works.
TOY_PARAMETERS = 100_000_000
TEST_NAMES = {"bs": "paired bootstrap resampling", "ar": "paired approximate randomization"}


def _json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(str(path), [f"cannot read it as JSON ({err})"]) from None


def read_curves(path: Path) -> dict[str, list[tuple[int, float]]]:
    """`loss` and `dev_loss` against step from metrics.jsonl; a step logged twice (a
    resumed run) keeps its last value; a cut last line (a killed run) is skipped."""
    curves: dict[str, dict[int, float]] = {"loss": {}, "dev_loss": {}}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            for key, points in curves.items():
                if isinstance(row, dict) and key in row and "step" in row:
                    points[int(row["step"])] = float(row[key])
    return {key: sorted(points.items()) for key, points in curves.items() if points}


def load_run(path: str | Path) -> Run:
    folder = Path(path)
    if (folder / "eval" / "scores.json").is_file():
        eval_dir, run_dir = folder / "eval", folder
    elif (folder / "scores.json").is_file():
        eval_dir = folder
        markers = ("summary.json", "config.json", "metrics.jsonl")
        run_dir = folder.parent if any((folder.parent / m).is_file() for m in markers) else None
    else:
        raise ConfigError(
            str(folder), ["no scores.json here or in eval/; run `python -m eval run` first"]
        )
    scores = _json(eval_dir / "scores.json") or {}
    run = Run((run_dir or eval_dir).name, folder, eval_dir, run_dir, scores)
    run.align = _json(eval_dir / "align.json")
    if run_dir is not None:
        run.summary = _json(run_dir / "summary.json")
        run.config = _json(run_dir / "config.json")
        run.curves = read_curves(run_dir / "metrics.jsonl")
        data = (run.config or {}).get("data")
        if data:
            run.manifest = _json(_resolve(run_dir, data) / "manifest.json")
    return run


def _resolve(run_dir: Path, data: str) -> Path:
    """The build folder a run's config names (relative paths were the launch folder's;
    tried as given, then from the run folder's parents)."""
    candidates = [Path(data)] + [parent / data for parent in run_dir.resolve().parents]
    return next((c for c in candidates if (c / "manifest.json").is_file()), Path(data))


def assign_labels(runs: list[Run], labels: str | None) -> None:
    """Run folder names; where those clash, the last two parts of the given paths
    (`full/eval`, `full/eval-beam4`); or the given `--labels`."""
    if labels is not None:
        given = [label.strip() for label in labels.split(",")]
        if len(given) != len(runs) or len(set(given)) != len(given) or "" in given:
            raise ConfigError("--labels", [
                f"{labels!r}: give {len(runs)} different comma-separated labels, one per run"
            ])  # fmt: skip
        for run, label in zip(runs, given, strict=True):
            run.label = label
        return
    names = [run.label for run in runs]
    for run in runs:
        if names.count(run.label) > 1:  # e.g. runs/full/eval and runs/full/eval-beam4
            run.label = "/".join(run.source.resolve().parts[-2:])
    final = [run.label for run in runs]
    if len(set(final)) != len(final):
        raise ConfigError("report", [f"runs share the labels {final}; name them with --labels"])


# --- significance ---------------------------------------------------------------------


def _lines(path: Path) -> list[str] | None:
    return read_lines(path) if path.is_file() else None


def _check(path: Path, lines: list[Any], refs: list[str]) -> None:
    if len(lines) != len(refs):
        raise CorpusError(
            f"{path} has {len(lines)} lines but the baseline's references have {len(refs)}"
        )


def _references(run: Run, direction: str) -> tuple[list[str] | None, list[str] | None]:
    """A run's saved first references of a direction and its alternatives file's lines."""
    refs = run.eval_dir / "refs"
    return _lines(refs / f"{direction}.txt"), _lines(refs / f"{direction}.alt.txt")


def direction_tests(
    runs: list[Run], base: Run, direction: str, settings: PairedSettings
) -> dict[str, Any] | None:
    """{metric: {label: result}} for one direction, over the runs scored on the same
    references as the baseline; None when the baseline has no references saved."""
    refs, alt_lines = _references(base, direction)
    if refs is None or not (base.eval_dir / "hyps" / f"{direction}.txt").is_file():
        return None
    if alt_lines is not None:
        _check(base.eval_dir / "refs" / f"{direction}.alt.txt", alt_lines, refs)
    systems, comet = [], []
    for run in [base, *(r for r in runs if r is not base)]:
        hyp_path = run.eval_dir / "hyps" / f"{direction}.txt"
        hyps = _lines(hyp_path)
        if hyps is None or _references(run, direction) != (refs, alt_lines):
            continue  # not decoded, or on other references: no paired test
        _check(hyp_path, hyps, refs)
        systems.append((run.label, hyps))
        segments_path = run.eval_dir / "comet" / f"{direction}.txt"
        if run.value(direction, "comet") is not None and segments_path.is_file():
            segments = [float(x) for x in read_lines(segments_path)]
            _check(segments_path, segments, refs)
            comet.append((run.label, segments))
    target = direction.split("-")[-1]
    alternatives = None
    if alt_lines is not None:
        alternatives = [[a for a in line.split(ALTERNATIVES_SEPARATOR) if a] for line in alt_lines]
    result = paired_text_tests(systems, refs, target, settings, alternatives)
    if comet and comet[0][0] == base.label and len(comet) > 1 and base.comet_tested(direction):
        result["comet"] = paired_segment_tests(comet, "comet", settings)
    return result


def significance(runs: list[Run], base: Run, settings: PairedSettings) -> dict[str, dict[str, Any]]:
    result = {}
    for direction in base.scores["directions"]:
        tests = direction_tests(runs, base, direction, settings)
        if tests is not None:
            result[direction] = tests
    correct(result, base.label, settings.correction)
    return result


# --- tables ---------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _delta(value: float | None, base: float | None) -> str:
    """Two decimals; a difference that would show as +0.00 gets two significant digits, so
    that a marked (significant) difference never reads as zero."""
    if value is None or base is None:
        return ""
    diff = value - base
    return f"{diff:+.2g}" if diff and abs(diff) < 0.005 else f"{diff:+.2f}"


def _interval(test: dict[str, Any] | None) -> str:
    if not test or test.get("ci") is None:
        return ""
    return f" ({test['mean']:.2f} ± {test['ci']:.2f})"


def _p(test: dict[str, Any] | None) -> str:
    """The raw p-value; the corrected one in parentheses where it differs."""
    if not test or test.get("p_value") is None:
        return ""
    adjusted = test.get("p_adjusted")
    shown = f"{test['p_value']:.3f}"
    if adjusted is not None and f"{adjusted:.3f}" != shown:
        shown += f" ({adjusted:.3f})"
    return shown + (" *" if test["significant"] else "")


def metric_table(
    runs: list[Run], base: Run, metric: str, tests: dict[str, dict[str, Any]]
) -> list[str]:
    rows = list(base.scores["directions"]) + [
        r for r in AVERAGE_ROWS if base.value(r, metric) is not None
    ]
    others = [r for r in runs if r is not base]
    head = ["", base.label] + [c for r in others for c in (r.label, "Δ", "p")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        found = tests.get(row, {}).get(metric, {}).get("systems", {})
        name = f"**avg {row}**" if row in AVERAGE_ROWS else row
        if metric == "comet" and not base.scores["directions"].get(row, {}).get(
            "comet_covered", True
        ):
            name += f" {UNCOVERED_MARK}"
        cells = [name, _fmt(base.value(row, metric)) + _interval(found.get(base.label))]
        for run in others:
            test = found.get(run.label)
            value = run.value(row, metric)
            star = " *" if test and test["significant"] else ""
            base_test = found.get(base.label)
            pair = (  # the tests' unrounded scores where tested: scores.json keeps two decimals
                (test["score"], base_test["score"]) if test and base_test
                else (value, base.value(row, metric))
            )  # fmt: skip
            delta = _delta(*pair) + star
            cells += [_fmt(value) + _interval(test), delta, _p(test)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def cost_table(runs: list[Run]) -> list[str]:
    head = ["run", *(title for _, title, _ in COST_KEYS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in runs:
        summary = run.summary or {}
        cells = [fmt.format(summary[key]) if key in summary else "n/a" for key, _, fmt in COST_KEYS]
        lines.append("| " + " | ".join([run.label, *cells]) + " |")
    return lines


def _significant_count(
    run: Run, base: Run, metric: str, tests: dict[str, dict[str, Any]]
) -> tuple[int, int, int]:
    """(directions tested, significantly better, significantly worse) for one run."""
    tested = better = worse = 0
    for found in tests.values():
        systems = found.get(metric, {}).get("systems", {})
        test, base_test = systems.get(run.label), systems.get(base.label)
        if not test or not base_test or test["p_value"] is None:
            continue
        tested += 1
        if test["significant"]:
            better += test["score"] > base_test["score"]
            worse += test["score"] < base_test["score"]
    return tested, better, worse


def headline(
    run: Run, base: Run, metrics: list[str], tests: dict[str, Any], correction: str = "holm"
) -> str:
    parts = []
    for metric in metrics:
        groups = [g for g in AVERAGE_ROWS if base.value(g, metric) is not None]
        deltas = ", ".join(
            f"{g} {_delta(run.value(g, metric), base.value(g, metric))}" for g in groups
        )
        tested, better, worse = _significant_count(run, base, metric, tests)
        if tested:
            deltas += f" (significant in {better + worse} of {tested} directions"
            deltas += f": {better} better, {worse} worse"
            name = CORRECTION_NAMES[correction]
            deltas += (f"; {name}-corrected" if correction != "none" else "") + ")"
        parts.append(f"{metric}: {deltas}")
    groups = [g for g in AVERAGE_ROWS if base.value(g, OFF_TARGET) is not None]
    if groups:
        parts.append("off-target %: " + ", ".join(
            f"{g} {_fmt(base.value(g, OFF_TARGET))} -> {_fmt(run.value(g, OFF_TARGET))}"
            for g in groups
        ))  # fmt: skip
    cost = ""
    if run.summary and base.summary:
        ratio = run.summary["tokens"] / max(base.summary["tokens"], 1)
        time_ratio = run.summary["wall_seconds"] / max(base.summary["wall_seconds"], 1e-9)
        cost = f"; cost: {ratio:.2f}x the tokens, {time_ratio:.2f}x the training time"
    return f"- **{run.label}** vs {base.label}: " + "; ".join(parts) + cost


# --- what was compared ----------------------------------------------------------------


def _model_cell(run: Run) -> str:
    model = (run.config or {}).get("model") or {}
    name = f"tiny random {_tiny_family(run)}" if model.get("tiny") else model.get("name")
    name = name or (run.summary or {}).get("model", "n/a")
    total = (run.summary or {}).get("total_parameters")
    return f"{name} ({total:,} params)" if total else str(name)


def _tiny_family(run: Run) -> str:
    """The family of a run's tiny random model (runs before model.tiny_family: BLOOM)."""
    return str(((run.config or {}).get("model") or {}).get("tiny_family", "bloom"))


def _lora_targets(run: Run) -> str:
    """The configured targets, or the model family's default ones (an empty list)."""
    lora = (run.config or {}).get("lora") or {}
    if lora.get("target_modules"):
        return ", ".join(lora["target_modules"])
    model = (run.config or {}).get("model") or {}
    if model.get("tiny"):
        return ", ".join(family_named(_tiny_family(run)).lora_targets)
    return "the model family's default modules"


def _finetune_cell(run: Run) -> str:
    config, summary = run.config or {}, run.summary or {}
    kind = config.get("finetune") or summary.get("finetune", "n/a")
    if kind == "lora" and config.get("lora"):
        lora = config["lora"]
        kind = f"LoRA r={lora.get('rank')} alpha={lora.get('alpha')} on {_lora_targets(run)}"
    trainable = summary.get("trainable_parameters")
    return kind + (f", {trainable:,} trainable" if trainable else "")


def _data_cell(run: Run) -> str:
    if not run.manifest:
        return (run.config or {}).get("data", "n/a")
    stages = [
        " + ".join(f"{kind} {count:,}" for kind, count in stage.get("by_kind", {}).items())
        for stage in run.manifest.get("stages", [])
    ]
    data = (run.config or {}).get("data", "")
    return f"{data}: {run.manifest.get('recipe', '')} " + " -> ".join(stages)


def compared_table(runs: list[Run]) -> list[str]:
    head = ["run", "model", "fine-tuning", "data (samples per type, per stage)", "steps", "wall"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in runs:
        summary = run.summary or {}
        steps = f"{summary['steps']:,}" if "steps" in summary else "n/a"
        wall = f"{summary['wall_seconds'] / 60:.1f} min" if "wall_seconds" in summary else "n/a"
        cells = [run.label, _model_cell(run), _finetune_cell(run), _data_cell(run), steps, wall]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def toy_note(runs: list[Run]) -> list[str]:
    sizes = [r.summary["total_parameters"] for r in runs if "total_parameters" in (r.summary or {})]
    tiny = any(((r.config or {}).get("model") or {}).get("tiny") for r in runs)
    if not tiny and (not sizes or max(sizes) >= TOY_PARAMETERS):
        return []
    families = sorted(
        {_tiny_family(r) for r in runs if ((r.config or {}).get("model") or {}).get("tiny")}
    )
    size = (
        f"at most {max(sizes):,} parameters"
        if sizes
        else f"tiny random {', '.join(families) or 'models'}"
    )
    minutes = max((r.summary or {}).get("wall_seconds", 0) for r in runs) / 60
    return [
        "",
        f"**These are toy models** ({size}, each trained for at most {minutes:.1f} "
        "minutes): the scores show that the pipeline works end to end, "
        "not what AlignInstruct or LoRA do at scale. The commands for real models "
        "(BLOOMZ 560m to 7b1 and current Qwen, Llama and Gemma models on OPUS-100) are in "
        "docs/training.md, docs/evaluation.md and docs/model-families.md." + _toy_lora_note(runs),
    ]


def _toy_lora_note(runs: list[Run]) -> str:
    """Why a toy's LoRA adapts more than the paper-scale default, from its own config."""
    for run in runs:
        lora, summary = (run.config or {}).get("lora"), run.summary or {}
        if (run.config or {}).get("finetune") != "lora" or not lora:
            continue
        trainable, total = summary.get("trainable_parameters"), summary.get("total_parameters")
        share = f", {trainable / total:.0%} of the model" if trainable and total else ""
        count = f": {trainable:,} trainable parameters{share}" if trainable else ""
        return (
            f" LoRA ({run.label}) adapts {_lora_targets(run)} at rank "
            f"{lora.get('rank')}{count}, chosen so that it can learn at this size: with the "
            "paper-scale default (rank 8 on the attention projections), a model this small "
            "has a few thousand trainable parameters and its loss barely moves."
        )
    return ""


def settings_note(settings: PairedSettings, tests: dict[str, Any]) -> list[str]:
    if not tests:
        return [
            "",
            "No significance tests: the baseline's eval folder has no `refs/` (written by "
            "`python -m eval run` or `score`); rescore it to add them.",
        ]
    if settings.paired == "bs":
        draws = f"{settings.n:,} resamples"
    else:
        draws = f"{settings.n:,} trials (intervals: {settings.confidence_resamples:,} resamples)"
    return [
        "",
        f"Significance: {TEST_NAMES[settings.paired]} against the baseline with sacreBLEU's "
        f"own `PairedTest`, {draws}, seed {settings.seed}. Scores are shown as `score "
        "(bootstrap mean ± half-width of the 95% interval)`; `p` is the p-value of the "
        "difference to the baseline. COMET is tested as the mean of its segment scores with "
        "the same code. " + _correction_note(settings.correction, tests),
    ]


def _correction_note(correction: str, tests: dict[str, Any]) -> str:
    if correction == "none":
        return ("`*` marks p < 0.05 (a zero difference never), uncorrected for the "
                f"{len(tests)} directions compared.")  # fmt: skip
    return (
        f"Multiple comparisons: {CORRECTION_NAMES[correction]} correction over the "
        f"{len(tests)} directions, per run and metric; `p` is the raw p-value, in "
        "parentheses the corrected one where it differs, and `*` marks a corrected "
        "p < 0.05 (a zero difference never)."
    )


def off_target_table(runs: list[Run], base: Run) -> list[str]:
    """Off-target % per direction and group average, each run beside the baseline."""
    rows = list(base.scores["directions"]) + [
        r for r in AVERAGE_ROWS if base.value(r, OFF_TARGET) is not None
    ]
    others = [r for r in runs if r is not base]
    head = ["", base.label] + [c for r in others for c in (r.label, "Δ")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        name = f"**avg {row}**" if row in AVERAGE_ROWS else row
        value = base.value(row, OFF_TARGET)
        cells = [name, "n/a" if value is None else _fmt(value)]
        for run in others:
            mine = run.value(row, OFF_TARGET)
            cells += ["n/a" if mine is None else _fmt(mine), _delta(mine, value)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def off_target_note(base: Run) -> list[str]:
    identifier = base.scores.get("off_target_identifier") or {}
    uncovered = [d for d, e in base.scores["directions"].items() if e.get(OFF_TARGET) is None]
    text = (
        "Share of hypotheses (%) the language identifier "
        f"({identifier.get('package', 'n/a')}, {identifier.get('model', '')}) does not "
        "identify as the target language; lower is better. Averages are over the "
        "directions with a rate."
    )
    if uncovered:
        text += f" n/a: the identifier has no label for the target of {', '.join(uncovered)}."
    return ["", text]


def comet_note(base: Run) -> list[str]:
    uncovered = [d for d, e in base.scores["directions"].items() if e.get("comet_covered") is False]
    if not uncovered:
        return []
    averaged = bool(base.scores.get("comet_uncovered_in_averages"))
    return ["", f"{UNCOVERED_MARK}: a language of the direction is outside the COMET "
            "encoder's pre-training languages (XLM-R); its score is unreliable and "
            + ("included in the averages and tests, as asked." if averaged
               else "left out of the averages and tests.")]  # fmt: skip


# --- AlignInstruct --------------------------------------------------------------------


def align_table(runs: list[Run]) -> list[str]:
    head = ["run", "trained on", "accuracy", "precision (True)", "recall (True)",
            "True share", "samples"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in runs:
        kinds = run.kinds()
        trained = "n/a" if kinds is None else "+".join(kinds)
        if kinds is not None and "align" not in kinds:
            trained += " (no AlignInstruct: untrained baseline)"
        a = run.align
        if a is None:
            lines.append(f"| {run.label} | {trained} | not measured | | | | |")
            continue
        cells = [f"{a['accuracy']:.3f}", _fmt3(a["precision_true"]), _fmt3(a["recall_true"]),
                 f"{a['true_share']:.2f}", f"{a['samples']:,}"]  # fmt: skip
        lines.append("| " + " | ".join([run.label, trained, *cells]) + " |")
    return lines


def _fmt3(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


# --- the report -----------------------------------------------------------------------


# A chain that trains, exports, decodes and scores consistently reproduces pairs it was
# trained to memorise almost exactly; a prompt, label or EOS mismatch does not.
SANITY_BLEU = 95.0


def sanity_section(eval_dir: str | Path) -> list[str]:
    """'Can the chain learn?': BLEU of a model that memorised its own test pairs through
    the same commands (the demo's memorisation run), with a verdict."""
    scores = _json(Path(eval_dir) / "scores.json")
    if scores is None:
        raise ConfigError("--sanity", [f"{eval_dir}: no scores.json (run `eval run` there)"])
    bleu = {name: entry["bleu"] for name, entry in sorted(scores["directions"].items())}
    sentences = max(entry.get("sentences", 0) for entry in scores["directions"].values())
    passed = min(bleu.values()) >= SANITY_BLEU
    verdict = (
        f"passes (every direction >= {SANITY_BLEU:g})"
        if passed
        else f"**FAILS** (below {SANITY_BLEU:g}): training and decoding do not fit together "
        "(prompt, labels or EOS); the scores below cannot be trusted"
    )
    values = ", ".join(f"{name} {value:.1f}" for name, value in bleu.items())
    return [
        "## Can the chain learn?", "",
        f"A model trained through the same commands to memorise {sentences} training pairs, "
        f"then asked to translate them: BLEU {values}. The check {verdict}.", "",
    ]  # fmt: skip


def _select_base(runs: list[Run], baseline: str | None) -> Run:
    labels = [r.label for r in runs]
    if baseline is not None and baseline not in labels:
        raise ConfigError("--baseline", [f"{baseline!r} is not one of the runs {labels}"])
    return next(r for r in runs if r.label == (baseline or labels[0]))


def report(
    paths: list[str], out: str | Path, baseline: str | None = None,
    settings: PairedSettings | None = None, labels: str | None = None,
    sanity: str | Path | None = None,
) -> str:  # fmt: skip
    settings = settings or PairedSettings()
    runs = [load_run(p) for p in paths]
    assign_labels(runs, labels)
    base = _select_base(runs, baseline)
    metrics = [m for m in METRICS if base.value("all", m) is not None]
    tests = significance(runs, base, settings) if len(runs) > 1 else {}
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# Comparison against {base.label}", ""]
    lines += sanity_section(sanity) if sanity else []
    lines += ["## What was compared", ""]
    lines += compared_table(runs) + toy_note(runs)
    lines += ["", "## Results", ""]
    lines += [
        headline(r, base, metrics, tests, settings.correction) for r in runs if r is not base
    ] or ["(one run: no comparison)"]
    lines += settings_note(settings, tests) if len(runs) > 1 else []
    for metric in metrics:
        lines += ["", f"## {METRIC_TITLES[metric]}", "", *metric_table(runs, base, metric, tests)]
        lines += comet_note(base) if metric == "comet" else []
    if base.value("all", OFF_TARGET) is not None:
        lines += ["", "## Off-target rate", "", *off_target_table(runs, base)]
        lines += off_target_note(base)
    lines += ["", "## AlignInstruct accuracy (held-out dev samples)", "", *align_table(runs)]
    lines += ["", "## Training cost", "", *cost_table(runs), ""]
    images = plot_all(runs, base, metrics, tests, folder)
    lines += [f"![{name}]({name})" for name in images]
    text = "\n".join(lines) + "\n"
    write_lines(folder / "report.md", text.splitlines())
    write_json(folder / "report.json", {
        "baseline": base.label,
        "significance": {"settings": settings.record(), "directions": tests},
        "runs": {r.label: {"eval_dir": str(r.eval_dir), "scores": r.scores,
                           "training": r.summary, "config": r.config, "align": r.align}
                 for r in runs},
    })  # fmt: skip
    return text
