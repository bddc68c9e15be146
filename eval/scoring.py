"""sacreBLEU BLEU and chrF++ per direction, COMET when a checkpoint is given, the
off-target rate (eval.offtarget), averages.

BLEU's tokenizer follows the target language (zh, ja-mecab, ko-mecab, else 13a);
chrF++ is chrF with word n-grams of order 2. Each metric's signature is saved with the
scores, so a number can always be traced to how it was computed. Where a test set gives
alternative references, BLEU and chrF++ score against all of them (sacreBLEU's
multi-reference API: one stream per reference, `None` where a segment has fewer), COMET
against the first. A direction whose languages COMET's encoder was not pre-trained on
(eval.coverage) is flagged `comet_covered: false` and left out of the COMET averages
unless they are asked to include it.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.fileio import write_lines
from data_prep.contract import readers
from data_prep.contract.readers import ALTERNATIVES_SEPARATOR, CorpusError

if TYPE_CHECKING:  # sacreBLEU is imported where it scores, not when eval.scoring is
    from sacrebleu.metrics.base import Metric

BLEU_TOKENIZERS = {"zh": "zh", "ja": "ja-mecab", "ko": "ko-mecab"}
METRICS = ("bleu", "chrf", "comet")
# Reported beside the metrics and averaged the same way, but not significance-tested.
RATES = ("off_target",)
TITLES = {"bleu": "BLEU", "chrf": "chrF++", "comet": "COMET", "off_target": "off-target %"}
UNCOVERED_MARK = "†"  # a COMET score on a language outside its encoder's pre-training
# Direction groups (eval.directions.group_of) and the overall mean, in report order.
AVERAGE_GROUPS = ("en->X", "X->en", "zero-shot", "all")


def bleu_tokenizer(target_lang: str) -> str:
    return BLEU_TOKENIZERS.get(target_lang, "13a")


def text_metrics(target_lang: str) -> dict[str, Metric]:
    """The sacreBLEU metric objects of a direction, keyed as in scores.json: BLEU with the
    target language's tokenizer and chrF++. The one definition that scoring and the
    significance tests share, so a score and its test carry the same signature."""
    from sacrebleu.metrics import BLEU, CHRF

    return {"bleu": BLEU(tokenize=bleu_tokenizer(target_lang)), "chrf": CHRF(word_order=2)}


def _ends_with_newline(path: Path) -> bool:
    """An empty file, or one whose last byte ends a line (a killed writer leaves neither)."""
    with open(path, "rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def read_hypotheses(path: Path, refs: Sequence[str], ref_name: str) -> list[str]:
    """One hypothesis per reference; a missing file, a file cut mid-line or one with
    another number of lines is an error naming it (never scored)."""
    again = "run `python -m eval run` again to decode it"
    if not path.is_file():
        raise CorpusError(f"{path}: no such hypothesis file; {again}")
    if not _ends_with_newline(path):
        raise CorpusError(f"{path}: the last line has no newline (cut mid-line?); {again}")
    try:
        hyps = readers.read_lines(path)
    except CorpusError as err:
        raise CorpusError(f"{err}; {again}") from None
    if len(hyps) != len(refs):
        raise CorpusError(
            f"{path} has {len(hyps)} lines but the references ({ref_name}) have {len(refs)}; "
            f"{again}"
        )
    return hyps


def reference_streams(
    refs: Sequence[str], alternatives: Sequence[Sequence[str]] | None = None
) -> list[list[str | None]]:
    """sacreBLEU's reference streams: the first references, then one stream per further
    alternative, `None` where a segment has fewer (sacreBLEU skips those)."""
    streams: list[list[str | None]] = [list(refs)]
    depth = max((len(alts) for alts in alternatives or ()), default=0)
    for k in range(depth):
        streams.append([alts[k] if k < len(alts) else None for alts in alternatives or ()])
    return streams


def write_alternatives(path: Path, alternatives: Sequence[Sequence[str]]) -> None:
    """A direction's alternative references beside its first ones (for the report's tests),
    in the corpus layout (tab-separated per line); none: any stale file is removed."""
    if any(alternatives):
        write_lines(path, (ALTERNATIVES_SEPARATOR.join(alts) for alts in alternatives))
    else:
        path.unlink(missing_ok=True)


def degenerate(hyps: Sequence[str]) -> str | None:
    """Why a direction's score says nothing about its translations (every hypothesis
    empty, or all the same sentence: a model that stops at once or ignores its input),
    or None."""
    if not hyps:
        return None
    distinct = {h.strip() for h in hyps}
    if distinct <= {""}:
        return f"all {len(hyps)} hypotheses are empty"
    if len(distinct) == 1 and len(hyps) > 1:
        text = next(iter(distinct))
        shown = text if len(text) <= 60 else text[:57] + "..."
        return f"all {len(hyps)} hypotheses are the same sentence: {shown!r}"
    return None


def score_direction(
    hyps: Sequence[str], refs: Sequence[str], target_lang: str,
    alternatives: Sequence[Sequence[str]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    from eval.offtarget import off_target

    streams = reference_streams(refs, alternatives)
    metrics = text_metrics(target_lang)
    bleu, chrf = metrics["bleu"], metrics["chrf"]
    bleu_score = bleu.corpus_score(list(hyps), streams)
    chrf_score = chrf.corpus_score(list(hyps), streams)
    found = off_target(hyps, target_lang)
    result = {
        "bleu": round(bleu_score.score, 2),
        "chrf": round(chrf_score.score, 2),
        "off_target": found["off_target"],
        "identified": found["identified"],
        "signatures": {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())},
        "sentences": len(hyps),
        "references": len(streams),
    }
    if warning := degenerate(hyps):
        result["warning"] = warning
    return result


def averages(
    per_direction: dict[str, dict[str, Any]], comet_uncovered: bool = False
) -> dict[str, dict[str, float]]:
    """Mean of each metric over en->X, X->en and zero-shot directions, and over all.
    Directions without a value (off-target: a language the identifier does not cover)
    are left out, and so are COMET scores flagged uncovered unless `comet_uncovered`;
    `{metric}_directions` counts the directions averaged."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in per_direction.values():
        groups.setdefault(entry["group"], []).append(entry)
        groups.setdefault("all", []).append(entry)
    result: dict[str, dict[str, float]] = {}
    order = [g for g in AVERAGE_GROUPS if g in groups]
    for group in order:
        entries = groups[group]
        result[group] = {"directions": len(entries)}
        for metric in (*METRICS, *RATES):
            values = [e[metric] for e in entries if _averaged(e, metric, comet_uncovered)]
            if values:
                result[group][metric] = round(sum(values) / len(values), 2)
            if metric in ("comet", *RATES) and any(e.get(metric) is not None for e in entries):
                result[group][f"{metric}_directions"] = len(values)
    return result


def _averaged(entry: dict[str, Any], metric: str, comet_uncovered: bool) -> bool:
    if entry.get(metric) is None:
        return False
    return metric != "comet" or comet_uncovered or entry.get("comet_covered", True)


def metrics_present(per_direction: dict[str, dict[str, Any]]) -> list[str]:
    """The metrics and rates with a value in some direction, in table order."""
    return [
        m for m in (*METRICS, *RATES) if any(e.get(m) is not None for e in per_direction.values())
    ]


def cell(entry: dict[str, Any], metric: str) -> str:
    """A table cell: two decimals, "n/a" for a direction without the value, and the
    uncovered mark on a COMET score outside its encoder's languages."""
    value = entry.get(metric)
    if value is None:
        return "n/a"
    mark = UNCOVERED_MARK if metric == "comet" and entry.get("comet_covered") is False else ""
    return f"{value:.2f}{mark}"


def to_csv(per_direction: dict[str, dict[str, Any]]) -> str:
    """One row per direction; "n/a" where a direction has no value; `comet_covered` beside
    COMET."""
    metrics = metrics_present(per_direction)
    extra = ["comet_covered"] if "comet" in metrics else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["direction", "group", "sentences", *metrics, *extra])
    for name, e in per_direction.items():
        values = ["n/a" if e.get(m) is None else e[m] for m in metrics]
        writer.writerow([name, e["group"], e["sentences"], *values, *(e.get(k) for k in extra)])
    return out.getvalue()


def to_markdown(
    per_direction: dict[str, dict[str, Any]], avg: dict[str, dict[str, float]],
    comet_uncovered: bool = False,
) -> str:  # fmt: skip
    metrics = metrics_present(per_direction)
    head = ["direction", "group", *(TITLES[m] for m in metrics)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, e in per_direction.items():
        lines.append("| " + " | ".join([name, e["group"], *(cell(e, m) for m in metrics)]) + " |")
    lines += [
        "",
        "| average | directions | " + " | ".join(TITLES[m] for m in metrics) + " |",
        "|" + "---|" * (2 + len(metrics)),
    ]
    for group, values in avg.items():
        cells = [_average_cell(values, m) for m in metrics]
        lines.append(f"| {group} | {values['directions']} | " + " | ".join(cells) + " |")
    warned = [
        f"- **{name}**: {e['warning']}" for name, e in per_direction.items() if "warning" in e
    ]
    if warned:
        lines += ["", "Warnings (these scores say nothing about the translations):", *warned]
    return "\n".join(lines + notes(per_direction, avg, comet_uncovered)) + "\n"


def _average_cell(values: dict[str, float], metric: str) -> str:
    """The mean, with "(k)" when it is over fewer directions than the group has."""
    if metric not in values:
        return "n/a"
    counted = values.get(f"{metric}_directions", values["directions"])
    partial = f" ({counted:.0f})" if counted != values["directions"] else ""
    return f"{values[metric]:.2f}{partial}"


def notes(
    per_direction: dict[str, dict[str, Any]], avg: dict[str, dict[str, float]],
    comet_uncovered: bool = False,
) -> list[str]:  # fmt: skip
    """What the marks in the tables mean, for the directions that have them."""
    found = []
    no_lid = [n for n, e in per_direction.items() if "off_target" in e and e["off_target"] is None]
    if no_lid:
        found.append(f"off-target n/a: the language identifier has no label for the target "
                     f"language of {', '.join(no_lid)}.")  # fmt: skip
    uncovered = [n for n, e in per_direction.items() if e.get("comet_covered") is False]
    if uncovered:
        found.append(
            f"{UNCOVERED_MARK} COMET on a language outside its encoder's pre-training "
            f"languages (XLM-R's): {', '.join(uncovered)}; "
            + ("included in" if comet_uncovered else "left out of")
            + " the COMET averages."
        )
    partial = any(
        v.get(f"{m}_directions", v["directions"]) != v["directions"]
        for v in avg.values() for m in ("comet", *RATES)
    )  # fmt: skip
    if partial:
        found.append("(k) after an average: over k of the group's directions (see above).")
    return ["", *found] if found else []
