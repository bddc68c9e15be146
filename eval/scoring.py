"""sacreBLEU BLEU and chrF++ per direction, COMET when a checkpoint is given, averages.

BLEU's tokenizer follows the target language (zh, ja-mecab, ko-mecab, else 13a);
chrF++ is chrF with word n-grams of order 2. Each metric's signature is saved with the
scores, so a number can always be traced to how it was computed.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data_prep.contract import readers
from data_prep.contract.readers import CorpusError

BLEU_TOKENIZERS = {"zh": "zh", "ja": "ja-mecab", "ko": "ko-mecab"}
METRICS = ("bleu", "chrf", "comet")
# Direction groups (eval.directions.group_of) and the overall mean, in report order.
AVERAGE_GROUPS = ("en->X", "X->en", "zero-shot", "all")


def bleu_tokenizer(target_lang: str) -> str:
    return BLEU_TOKENIZERS.get(target_lang, "13a")


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


def score_direction(hyps: Sequence[str], refs: Sequence[str], target_lang: str) -> dict[str, Any]:
    from sacrebleu.metrics import BLEU, CHRF

    bleu = BLEU(tokenize=bleu_tokenizer(target_lang))
    chrf = CHRF(word_order=2)
    bleu_score = bleu.corpus_score(list(hyps), [list(refs)])
    chrf_score = chrf.corpus_score(list(hyps), [list(refs)])
    result = {
        "bleu": round(bleu_score.score, 2),
        "chrf": round(chrf_score.score, 2),
        "signatures": {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())},
        "sentences": len(hyps),
    }
    if warning := degenerate(hyps):
        result["warning"] = warning
    return result


def averages(per_direction: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean of each metric over en->X, X->en and zero-shot directions, and over all."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in per_direction.values():
        groups.setdefault(entry["group"], []).append(entry)
        groups.setdefault("all", []).append(entry)
    result = {}
    order = [g for g in AVERAGE_GROUPS if g in groups]
    for group in order:
        entries = groups[group]
        result[group] = {"directions": len(entries)}
        for metric in METRICS:
            values = [e[metric] for e in entries if e.get(metric) is not None]
            if values:
                result[group][metric] = round(sum(values) / len(values), 2)
    return result


def metrics_present(per_direction: dict[str, dict[str, Any]]) -> list[str]:
    return [m for m in METRICS if any(e.get(m) is not None for e in per_direction.values())]


def to_csv(per_direction: dict[str, dict[str, Any]]) -> str:
    metrics = metrics_present(per_direction)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["direction", "group", "sentences", *metrics])
    for name, e in per_direction.items():
        writer.writerow([name, e["group"], e["sentences"], *(e.get(m) for m in metrics)])
    return out.getvalue()


def to_markdown(per_direction: dict[str, dict[str, Any]], avg: dict[str, dict[str, float]]) -> str:
    metrics = metrics_present(per_direction)
    head = ["direction", "group", *(m.upper() if m != "chrf" else "chrF++" for m in metrics)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, e in per_direction.items():
        lines.append(
            "| " + " | ".join([name, e["group"], *(f"{e[m]:.2f}" for m in metrics)]) + " |"
        )
    lines += [
        "",
        "| average | directions | " + " | ".join(metrics) + " |",
        "|" + "---|" * (2 + len(metrics)),
    ]
    for group, values in avg.items():
        cells = [f"{values[m]:.2f}" if m in values else "" for m in metrics]
        lines.append(f"| {group} | {values['directions']} | " + " | ".join(cells) + " |")
    warned = [
        f"- **{name}**: {e['warning']}" for name, e in per_direction.items() if "warning" in e
    ]
    if warned:
        lines += ["", "Warnings (these scores say nothing about the translations):", *warned]
    return "\n".join(lines) + "\n"
