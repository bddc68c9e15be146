"""Paired significance tests of systems against a baseline, with sacreBLEU's own code.

`sacrebleu.significance.PairedTest` runs paired bootstrap resampling (`bs`, Koehn 2004,
as the `sacrebleu --paired-bs` command line) or approximate randomization (`ar`, as
`--paired-ar`) on BLEU and chrF++ from their per-segment sufficient statistics. COMET's
system score is the mean of its segment scores, so its sufficient statistics are
(segment score, 1) and the same tests apply to it unchanged: `SegmentMean` is a sacreBLEU
`Metric` over given segment scores. Each result is the system's score, the bootstrap
mean with the half-width of its 95% interval (for `ar`, from a separate bootstrap of
`confidence_resamples`), and the p-value of the difference to the baseline.

sacreBLEU reads its seed from `SACREBLEU_SEED` (the baseline's interval) and passes it on
to each comparison; `seeded` sets it for the duration of a test. A seed of 0 would
leave the comparisons unseeded in sacreBLEU, so seeds start at 1.

A report tests each system on every direction: N tests per system and metric, so some
would come out "significant" by chance alone. `adjust` corrects the p-values of each such
family for multiple comparisons (Holm-Bonferroni by default, Bonferroni, or none) and
`significant` follows the corrected p-value; the raw one is kept as `p_value`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from sacrebleu.metrics.base import Metric, Score, Signature
from sacrebleu.significance import PairedTest

from core.typed_config import ConfigError
from eval.scoring import reference_streams, text_metrics

ALPHA = 0.05
DEFAULT_RESAMPLES = {"bs": 1000, "ar": 10000}  # sacreBLEU's command-line defaults
CORRECTIONS = ("holm", "bonferroni", "none")
CORRECTION_NAMES = {"holm": "Holm-Bonferroni", "bonferroni": "Bonferroni", "none": "none"}


@dataclass(frozen=True)
class PairedSettings:
    paired: Literal["bs", "ar"] = "bs"
    resamples: int = 0  # 0: sacreBLEU's default for the test (1000 bs, 10000 ar)
    seed: int = 12345  # sacreBLEU's default seed
    confidence_resamples: int = 1000  # bootstrap resamples for the intervals of `ar`
    correction: str = "holm"  # for multiple comparisons over a report's directions

    def __post_init__(self) -> None:
        problems = []
        if self.paired not in DEFAULT_RESAMPLES:
            problems.append(f"--paired: {self.paired!r} is not bs or ar")
        if self.resamples < 0:
            problems.append(f"--resamples: {self.resamples} must be >= 1 (0: the default)")
        if self.seed < 1:
            problems.append(f"--seed: {self.seed} must be >= 1 (sacreBLEU leaves 0 unseeded)")
        if self.correction not in CORRECTIONS:
            problems.append(f"--correction: {self.correction!r} is not one of {CORRECTIONS}")
        if problems:
            raise ConfigError("report", problems)

    @property
    def n(self) -> int:
        return self.resamples or DEFAULT_RESAMPLES[self.paired]

    def record(self) -> dict[str, Any]:
        import sacrebleu

        return {**asdict(self), "resamples": self.n, "alpha": ALPHA,
                "sacrebleu": sacrebleu.__version__}  # fmt: skip


class _MeanSignature(Signature):
    def __init__(self, args: dict) -> None:
        super().__init__(args)
        self._abbr["metric"] = "m"
        self.info["metric"] = f"{args['label']}-segment-mean"


class SegmentMean(Metric):
    """A corpus score that is 100 x the mean of given segment scores (COMET's system
    score). Its "hypotheses" are the segment scores themselves."""

    _SIGNATURE_TYPE = _MeanSignature

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label
        self.num_refs = 1

    def _extract_corpus_statistics(
        self, hypotheses: Sequence[float], references: Any
    ) -> list[list[float]]:
        return [[float(s), 1.0] for s in hypotheses]

    def _aggregate_and_compute(self, stats: list[list[float]]) -> Score:
        return self._compute_score_from_stats(np.asarray(stats, dtype=np.float64).sum(0))

    def _compute_score_from_stats(self, stats: Any) -> Score:
        return Score(self.label, 100.0 * float(stats[0]) / float(stats[1]))

    # Text-level hooks sacreBLEU requires of a Metric; scores come precomputed here.
    def _preprocess_segment(self, sent: str) -> str:
        return sent

    def _extract_reference_info(self, refs: Sequence[str]) -> dict[str, Any]:
        return {}

    def _compute_segment_statistics(self, hypothesis: str, ref_kwargs: dict) -> list[Any]:
        raise NotImplementedError("segment scores are given, not computed")


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    before = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = str(seed)
    try:
        yield
    finally:
        if before is None:
            del os.environ["SACREBLEU_SEED"]
        else:
            os.environ["SACREBLEU_SEED"] = before


def _run(
    systems: Sequence[tuple[str, Sequence[Any]]],
    metrics: dict[str, Metric],
    references: list[list[str]] | None,
    settings: PairedSettings,
) -> dict[str, dict[str, dict[str, Any]]]:
    """{metric: {"signature": ..., "systems": {system: {score, mean, ci, p_value,
    significant}}}}; the first system is the baseline (its p-value is None)."""
    confidence = settings.confidence_resamples if settings.paired == "ar" else -1
    with seeded(settings.seed):
        test = PairedTest(list(systems), metrics, references, test_type=settings.paired,
                          n_samples=settings.n, n_ar_confidence=confidence)  # fmt: skip
        signatures, table = test()
    names = [name for name in table if name != "System"]  # in the order of `metrics`
    result: dict[str, dict[str, Any]] = {}
    for key, name in zip(metrics, names, strict=True):
        result[key] = {"signature": signatures[name].format(), "systems": {}}
        base_score = table[name][0].score
        for (system, _), res in zip(systems, table[name], strict=True):
            p = res.p_value
            result[key]["systems"][system] = {
                "score": float(res.score),
                "mean": None if res.mean is None else float(res.mean),
                "ci": None if res.ci is None else float(res.ci),
                "p_value": None if p is None else float(p),
                # sacreBLEU's AR gives a zero difference its smallest p-value (multeval's
                # convention); no difference is never called significant here.
                "significant": None if p is None else bool(p < ALPHA and res.score != base_score),
            }
    return result


def paired_text_tests(
    systems: Sequence[tuple[str, Sequence[str]]],
    references: Sequence[str],
    target_lang: str,
    settings: PairedSettings,
    alternatives: Sequence[Sequence[str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """BLEU (tokenizer by target language) and chrF++ of each system against the first,
    on all references (the first, and each segment's alternatives)."""
    metrics = text_metrics(target_lang)
    streams: Any = reference_streams(references, alternatives)
    return _run(systems, metrics, streams, settings)


def paired_segment_tests(
    systems: Sequence[tuple[str, Sequence[float]]], label: str, settings: PairedSettings
) -> dict[str, Any]:
    """A mean-of-segments metric (COMET) of each system against the first."""
    return _run(systems, {label: SegmentMean(label)}, None, settings)[label]


def adjusted_p_values(p_values: Sequence[float], method: str) -> list[float]:
    """p-values adjusted for multiple comparisons, in the given order.

    `holm`: Holm's step-down (Holm 1979): sorted ascending, the i-th smallest (from 0) is
    multiplied by (m - i), capped at 1 and made non-decreasing. `bonferroni`: each times
    m, capped at 1. `none`: as given. Rejecting where the adjusted value is below alpha is
    the same decision as comparing the raw values with the methods' thresholds.
    """
    m = len(p_values)
    if method == "none":
        return list(p_values)
    if method == "bonferroni":
        return [min(1.0, m * p) for p in p_values]
    if method != "holm":
        raise ValueError(f"unknown correction {method!r}; one of {CORRECTIONS}")
    adjusted = [0.0] * m
    running = 0.0
    for i, index in enumerate(sorted(range(m), key=lambda k: p_values[k])):
        running = max(running, min(1.0, (m - i) * p_values[index]))
        adjusted[index] = running
    return adjusted


def correct(tests: dict[str, dict[str, Any]], base: str, method: str) -> None:
    """Adjust, in place, the p-values of each (metric, system) family over the directions
    of `tests` ({direction: {metric: {"systems": {label: result}}}}): each result gets
    `p_adjusted`, and `significant` follows it (a zero difference still never counts)."""
    families: dict[tuple[str, str], list[tuple[dict[str, Any], float | None]]] = {}
    for found in tests.values():
        for metric, result in found.items():
            systems = result["systems"]
            base_score = systems[base]["score"] if base in systems else None
            for label, res in systems.items():
                if res["p_value"] is not None:
                    families.setdefault((metric, label), []).append((res, base_score))
    for family in families.values():
        adjusted = adjusted_p_values([res["p_value"] for res, _ in family], method)
        for (res, base_score), p in zip(family, adjusted, strict=True):
            res["p_adjusted"] = p
            res["significant"] = bool(p < ALPHA and res["score"] != base_score)
