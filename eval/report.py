"""Side-by-side comparison of evaluated runs: tables with deltas, training cost, plots.

    python -m eval report runs/mt runs/mt+align runs/lora --baseline mt --out reports/cmp

Each RUN is a training run folder (with `summary.json` and `eval/scores.json`) or an
eval output folder (with `scores.json`; the training summary is looked for one level
up). The report answers "did it help, and at what cost": a headline per run against
the baseline, a table per metric (per direction and the en->X, X->en, zero-shot
averages) with deltas, the training cost of each run, and PNG plots.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.fileio import write_json, write_lines
from core.typed_config import ConfigError
from eval.scoring import AVERAGE_GROUPS as AVERAGE_ROWS
from eval.scoring import METRICS

COST_KEYS = (
    ("finetune", "fine-tuning", "{}"),
    ("trainable_parameters", "trainable params", "{:,}"),
    ("tokens", "tokens seen", "{:,}"),
    ("tokens_per_second", "tokens/s", "{:,.0f}"),
    ("peak_memory_mb", "peak memory (MB)", "{:,.0f}"),
    ("wall_seconds", "wall time (s)", "{:,.1f}"),
)


@dataclass
class Run:
    label: str
    scores: dict[str, Any]
    summary: dict[str, Any] | None

    def value(self, row: str, metric: str) -> float | None:
        source = self.scores["averages"] if row in AVERAGE_ROWS else self.scores["directions"]
        return source.get(row, {}).get(metric)


def load_run(path: str | Path, label: str | None = None) -> Run:
    folder = Path(path)
    for scores_path, summary_path in (
        (folder / "eval" / "scores.json", folder / "summary.json"),
        (folder / "scores.json", folder.parent / "summary.json"),
    ):
        if scores_path.is_file():
            summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
            return Run(label or folder.name, json.loads(scores_path.read_text()), summary)
    raise ConfigError(
        str(folder), ["no scores.json here or in eval/; run `python -m eval run` first"]
    )


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _delta(value: float | None, base: float | None) -> str:
    return "" if value is None or base is None else f"{value - base:+.2f}"


def metric_table(runs: list[Run], base: Run, metric: str) -> list[str]:
    rows = list(base.scores["directions"]) + [
        r for r in AVERAGE_ROWS if base.value(r, metric) is not None
    ]
    others = [r for r in runs if r is not base]
    head = ["", base.label] + [c for r in others for c in (r.label, "Δ")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        name = f"**avg {row}**" if row in AVERAGE_ROWS else row
        cells = [name, _fmt(base.value(row, metric))]
        for run in others:
            cells += [
                _fmt(run.value(row, metric)),
                _delta(run.value(row, metric), base.value(row, metric)),
            ]
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


def headline(run: Run, base: Run, metrics: list[str]) -> str:
    parts = []
    for metric in metrics:
        groups = [g for g in AVERAGE_ROWS if base.value(g, metric) is not None]
        deltas = ", ".join(
            f"{g} {_delta(run.value(g, metric), base.value(g, metric))}" for g in groups
        )
        parts.append(f"{metric}: {deltas}")
    cost = ""
    if run.summary and base.summary:
        ratio = run.summary["tokens"] / max(base.summary["tokens"], 1)
        time_ratio = run.summary["wall_seconds"] / max(base.summary["wall_seconds"], 1e-9)
        cost = f"; cost: {ratio:.2f}x the tokens, {time_ratio:.2f}x the training time"
    return f"- **{run.label}** vs {base.label}: " + "; ".join(parts) + cost


def plot(runs: list[Run], base: Run, metrics: list[str], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    directions = list(base.scores["directions"])
    width = 0.8 / len(runs)
    for metric in metrics:
        fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(directions) * len(runs)), 4))
        for i, run in enumerate(runs):
            values = [run.value(d, metric) or 0.0 for d in directions]
            ax.bar([x + i * width for x in range(len(directions))], values, width, label=run.label)
        ax.set_xticks(
            [x + width * (len(runs) - 1) / 2 for x in range(len(directions))],
            directions,
            rotation=90,
        )
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per direction")
        ax.legend()
        fig.tight_layout()
        name = f"{metric}_directions.png"
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        written.append(name)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        groups = [g for g in AVERAGE_ROWS if base.value(g, metric) is not None]
        for i, run in enumerate(runs):
            values = [run.value(g, metric) or 0.0 for g in groups]
            ax.bar([x + i * width for x in range(len(groups))], values, width, label=run.label)
        ax.set_xticks([x + width * (len(runs) - 1) / 2 for x in range(len(groups))], groups)
        ax.set_title(f"average {metric}")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(out / "averages.png", dpi=100)
    plt.close(fig)
    return [*written, "averages.png"]


def report(paths: list[str], out: str | Path, baseline: str | None = None) -> str:
    runs = [load_run(p) for p in paths]
    labels = [r.label for r in runs]
    if len(set(labels)) != len(labels):
        raise ConfigError("report", [f"run folder names must differ to label columns: {labels}"])
    if baseline is not None and baseline not in labels:
        raise ConfigError("--baseline", [f"{baseline!r} is not one of the runs {labels}"])
    base = next(r for r in runs if r.label == (baseline or labels[0]))
    metrics = [m for m in METRICS if base.value("all", m) is not None]
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# Comparison against {base.label}", ""]
    lines += [headline(r, base, metrics) for r in runs if r is not base] or [
        "(one run: no comparison)"
    ]
    for metric in metrics:
        lines += ["", f"## {metric}", "", *metric_table(runs, base, metric)]
    lines += ["", "## Training cost", "", *cost_table(runs), ""]
    images = plot(runs, base, metrics, folder)
    lines += [f"![{name}]({name})" for name in images]
    text = "\n".join(lines) + "\n"
    write_lines(folder / "report.md", text.splitlines())
    write_json(folder / "report.json", {
        "baseline": base.label,
        "runs": {r.label: {"scores": r.scores, "training": r.summary} for r in runs},
    })  # fmt: skip
    return text
