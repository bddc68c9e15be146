"""The report's PNG figures: scores per direction with 95% intervals, averages, the loss
curves of every run on one figure, and AlignInstruct accuracy per run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval.report_model import Run
from eval.scoring import AVERAGE_GROUPS


def _legend_above(fig: Any, ax: Any, columns: int) -> None:
    """One legend above the axes, where it cannot hide a bar."""
    fig.legend(*ax.get_legend_handles_labels(), loc="upper center", ncol=min(columns, 4),
               fontsize="small", frameon=False)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.88))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _error_bars(value: float, test: dict[str, Any] | None) -> tuple[float, float]:
    """Distances from the bar's top (the score) to the ends of sacreBLEU's 95% interval
    (bootstrap mean ± half-width); none without a test."""
    if not test or test.get("ci") is None:
        return 0.0, 0.0
    low, high = test["mean"] - test["ci"], test["mean"] + test["ci"]
    return max(value - low, 0.0), max(high - value, 0.0)


def _grouped_bars(ax: Any, runs: list[Run], rows: list[str], metric: str,
                  tests: dict[str, Any]) -> None:  # fmt: skip
    width = 0.8 / len(runs)
    for i, run in enumerate(runs):
        values = [run.value(row, metric) or 0.0 for row in rows]
        errors = [
            _error_bars(v, tests.get(row, {}).get(metric, {}).get("systems", {}).get(run.label))
            for v, row in zip(values, rows, strict=True)
        ]
        yerr = [[e[0] for e in errors], [e[1] for e in errors]] if any(map(any, errors)) else None
        xs = [x + i * width for x in range(len(rows))]
        ax.bar(xs, values, width, label=run.label, yerr=yerr, capsize=3)
    ax.set_xticks([x + width * (len(runs) - 1) / 2 for x in range(len(rows))], rows)


def direction_plot(runs: list[Run], base: Run, metric: str, tests: dict[str, Any],
                   out: Path) -> str:  # fmt: skip
    plt = _pyplot()
    directions = list(base.scores["directions"])
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(directions) * len(runs)), 5))
    _grouped_bars(ax, runs, directions, metric, tests)
    if len(directions) > 8:
        ax.tick_params(axis="x", labelrotation=90)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per direction (error bars: 95% interval, bootstrap)", fontsize=10)
    _legend_above(fig, ax, len(runs))
    name = f"{metric}_directions.png"
    fig.savefig(out / name, dpi=100)
    plt.close(fig)
    return name


def averages_plot(runs: list[Run], base: Run, metrics: list[str], out: Path) -> str:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        groups = [g for g in AVERAGE_GROUPS if base.value(g, metric) is not None]
        _grouped_bars(ax, runs, groups, metric, {})
        ax.set_title(f"average {metric}")
    _legend_above(fig, axes[0][0], len(runs))
    fig.savefig(out / "averages.png", dpi=100)
    plt.close(fig)
    return "averages.png"


def loss_plot(runs: list[Run], out: Path) -> str | None:
    """Training loss (solid) and dev loss (dashed, markers) of every run, by step."""
    if not any(run.curves for run in runs):
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, run in enumerate(runs):
        color = f"C{i}"
        if "loss" in run.curves:
            steps, values = zip(*run.curves["loss"], strict=True)
            ax.plot(steps, values, color=color, label=f"{run.label} train")
        if "dev_loss" in run.curves:
            steps, values = zip(*run.curves["dev_loss"], strict=True)
            ax.plot(steps, values, "--o", color=color, markersize=3, label=f"{run.label} dev")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (mean per answer token)")
    ax.set_title("loss curves")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out / "losses.png", dpi=100)
    plt.close(fig)
    return "losses.png"


def align_plot(runs: list[Run], out: Path) -> str | None:
    """AlignInstruct accuracy per run, with the majority answer's accuracy as a line."""
    measured = [run for run in runs if run.align]
    if not measured:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(measured)), 4))
    values = [run.align["accuracy"] for run in measured]  # type: ignore[index]
    ax.bar(range(len(measured)), values, color=[f"C{runs.index(r)}" for r in measured])
    share = measured[0].align["true_share"]  # type: ignore[index]
    ax.axhline(max(share, 1 - share), color="gray", linestyle="--", label="majority answer")
    for x, value in enumerate(values):
        ax.text(x, value + 0.01, f"{value:.2f}", ha="center", fontsize="small")
    ax.set_xticks(range(len(measured)), [r.label for r in measured])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.set_title("AlignInstruct accuracy (held-out dev samples)")
    ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "align.png", dpi=100)
    plt.close(fig)
    return "align.png"


def plot_all(runs: list[Run], base: Run, metrics: list[str], tests: dict[str, Any],
             out: Path) -> list[str]:  # fmt: skip
    names = [direction_plot(runs, base, metric, tests, out) for metric in metrics]
    names.append(averages_plot(runs, base, metrics, out))
    names += [n for n in (loss_plot(runs, out), align_plot(runs, out)) if n]
    return names
