"""The report's view of one evaluated run, shared by the report (eval.report) and its
plots (eval.report_plots), so that neither imports the other's module to name it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.scoring import AVERAGE_GROUPS as AVERAGE_ROWS


@dataclass
class Run:
    label: str
    source: Path  # the folder given on the command line
    eval_dir: Path
    run_dir: Path | None
    scores: dict[str, Any]
    summary: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = None
    align: dict[str, Any] | None = None
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def value(self, row: str, metric: str) -> float | None:
        source = self.scores["averages"] if row in AVERAGE_ROWS else self.scores["directions"]
        return source.get(row, {}).get(metric)

    def comet_tested(self, direction: str) -> bool:
        """COMET is compared on a direction its encoder covers, or on every direction when
        these scores averaged them all."""
        entry = self.scores["directions"].get(direction, {})
        return entry.get("comet_covered", True) or bool(
            self.scores.get("comet_uncovered_in_averages")
        )

    def kinds(self) -> list[str] | None:
        """Instruction types the run trained on (from its build's manifest)."""
        if not self.manifest:
            return None
        return sorted({k for stage in self.manifest.get("stages", []) for k in stage["kinds"]})
