"""Data recipes: languages, corpora, instruction types, curriculum, tokenization.

A recipe is YAML loaded into `Recipe` (see `typed_config`). Shipped recipes live in
`data_prep/recipes/`. The curriculum is a string of stages separated by `->`, each a
`+`-joined set of instruction types, e.g. `MT+Align->MT`; `ratios` says how many
samples of each type one sentence pair yields (per direction for MT, Hint and Revise,
per pair for Align, per side for Text; a fraction is drawn per pair with the seeded
RNG; `ratios.align` is the number of AlignInstruct samples per sentence pair, each a
different word pair where the sentence has enough). `mixing` says how the language
pairs are mixed in every stage, `stage_mixing.stageN` overrides it for stage N (see
`data_prep.mixing`). `Text` is no instruction: each side of a pair as plain text (empty prompt, loss
on every token), e.g. `curriculum=Text` to pre-train a base model on the corpus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.resources import resolve
from core.typed_config import load_config
from data_prep.align import AlignConfig
from data_prep.cleaning import CleanConfig
from data_prep.contract.languages import pair_codes, unknown_codes
from data_prep.contract.readers import CorpusSpec
from data_prep.mixing import MixConfig

INSTRUCTION_TYPES: tuple[str, ...] = ("mt", "align", "hint", "revise", "text")
# Kinds that read no word alignment (Text: plain causal-LM samples of each side).
UNALIGNED_TYPES: frozenset[str] = frozenset({"mt", "text"})
RECIPES_PACKAGE = "data_prep.recipes"


class CurriculumError(ValueError):
    pass


def parse_curriculum(text: str) -> list[list[str]]:
    """`"MT+Align->MT"` -> [["mt", "align"], ["mt"]]."""
    stages = []
    for stage in text.split("->"):
        kinds = [part.strip().lower() for part in stage.split("+")]
        unknown = [k for k in kinds if k not in INSTRUCTION_TYPES]
        if unknown or not stage.strip():
            raise CurriculumError(
                f"curriculum {text!r}: unknown instruction type(s) {unknown or [stage]}; "
                "use MT, Align, Hint, Revise, Text joined by '+' and stages joined by '->'"
            )
        if len(set(kinds)) != len(kinds):
            raise CurriculumError(f"curriculum {text!r}: a type repeats within stage {stage!r}")
        stages.append(kinds)
    return stages


def stage_name(index: int, kinds: list[str]) -> str:
    """Folder name of a stage: `stage1-mt+align`."""
    return f"stage{index + 1}-" + "+".join(kinds)


@dataclass(frozen=True)
class AlignInstructConfig:
    """Discriminative AlignInstruct.

    Positives are 1-to-1 links between content words in the link set `align.links.align`
    names, whose corpus-wide consistency min(P(y|x), P(x|y)) is at least `min_consistency` (0
    turns the filter off). The default 0.1 is the project's choice: it raises the
    positives' lexicon precision on FreeDict (bench/RESULTS.md, docs/method.md).
    """

    positive_share: float = 0.5
    """Share of samples whose asserted word pair is a true link (the answer True)."""
    min_consistency: float = 0.1
    """Least min(P(y|x), P(x|y)) over the corpus for a link to be a positive; 0: off."""

    def problems(self, key: str) -> list[str]:
        found = (
            []
            if 0.0 <= self.positive_share <= 1.0
            else [f"{key}.positive_share: must be within [0, 1]"]
        )
        return found + _consistency_problems(self.min_consistency, key)


def _consistency_problems(value: float, key: str) -> list[str]:
    return [] if 0.0 <= value <= 1.0 else [f"{key}.min_consistency: must be within [0, 1]"]


@dataclass(frozen=True)
class HintInstructConfig:
    max_hints: int = 3
    """Most word pairs given as hints in one HintInstruct sample."""
    min_consistency: float = 0.1
    """Least min(P(y|x), P(x|y)) over the corpus for a link to be a hint; 0: off."""

    def problems(self, key: str) -> list[str]:
        found = [] if self.max_hints >= 1 else [f"{key}.max_hints: must be >= 1"]
        return found + _consistency_problems(self.min_consistency, key)


@dataclass(frozen=True)
class ReviseInstructConfig:
    min_consistency: float = 0.1
    """Least min(P(y|x), P(x|y)) over the corpus for a link to be used; 0: off."""
    # Wrong words are drawn from content words of recent sentences of the same language.
    pool_size: int = 2000

    def problems(self, key: str) -> list[str]:
        found = [] if self.pool_size >= 1 else [f"{key}.pool_size: must be >= 1"]
        return found + _consistency_problems(self.min_consistency, key)


@dataclass(frozen=True)
class Recipe:
    name: str
    """The recipe's name (recorded in the build's manifest)."""
    pairs: list[str]
    """Language pairs `src-tgt` to build (e.g. [de-en]); codes of OPUS-100 or `language_names`."""
    corpus: CorpusSpec | None = field(default=None, kw_only=True)
    """Where the text is (format, path, ...) for every pair not in `corpora`."""
    tokenizer: str
    """A tokenizer folder or hub name (the model's)."""
    curriculum: str = "MT+Align->MT"
    """Instruction types per stage joined by '+', stages by '->' (MT, Align, Hint, Revise, Text)."""
    directions: Literal["both", "forward"] = "both"
    """Instructions in both directions of each pair, or src->tgt only."""
    split: Literal["train", "dev", "test"] = "train"
    """The corpus split the training data is built from."""
    corpora: dict[str, CorpusSpec] = field(default_factory=dict)
    """A pair's own corpus, by pair (`hu-en: {format: tsv, ...}`)."""
    max_pairs: int | None = None
    """At most this many sentence pairs per language pair; none: all."""
    ratios: dict[str, float] = field(default_factory=lambda: dict.fromkeys(INSTRUCTION_TYPES, 1.0))
    """Expected samples of each instruction type per sentence pair of a stage that uses it
    (1.5: one, and a second one half the time)."""
    language_names: dict[str, str] = field(default_factory=dict)
    """Prompt names of language codes (`kha: Khasi`), for codes outside OPUS-100 or to rename."""
    clean: CleanConfig = field(default_factory=CleanConfig)
    mixing: MixConfig = field(default_factory=MixConfig)
    stage_mixing: dict[str, MixConfig] = field(default_factory=dict)
    align: AlignConfig = field(default_factory=AlignConfig)
    align_instruct: AlignInstructConfig = field(default_factory=AlignInstructConfig)
    hint_instruct: HintInstructConfig = field(default_factory=HintInstructConfig)
    revise_instruct: ReviseInstructConfig = field(default_factory=ReviseInstructConfig)
    templates: str | None = None
    """Template overrides (YAML); none: the default templates."""
    chat_template: bool = False
    """Wrap each prompt and answer in the tokenizer's chat template (instruction-tuned
    Llama, Qwen, Gemma, Mistral); the loss stays on the answer. Off for BLOOMZ."""
    max_seq_len: int = 512
    """Longest sample in tokens; longer ones are truncated (counted in the manifest)."""
    shard_max_tokens: int = 50_000_000
    """Most tokens in one shard file."""
    workers: int = 2
    """Processes that tokenize in parallel."""
    seed: int = 1
    """Seed of every random choice of the build (sampling, shuffling, wrong words)."""
    dev: bool = True
    """Build the dev split (when the corpus has one) into dev/: MTInstruct shards for a dev
    loss, and AlignInstruct samples when a stage uses Align."""
    dev_max_pairs: int | None = 500
    """At most this many dev pairs per language pair, so a periodic dev loss stays cheap."""

    def problems(self, key: str) -> list[str]:
        # Nested dataclasses (corpus, corpora, clean, ...) are checked by typed_config.
        found = self._pair_problems()
        try:
            parse_curriculum(self.curriculum)
        except CurriculumError as err:
            found.append(f"curriculum: {err}")
        for kind, ratio in self.ratios.items():
            if kind not in INSTRUCTION_TYPES:
                found.append(f"ratios.{kind}: unknown type (known: {list(INSTRUCTION_TYPES)})")
            elif ratio < 0:
                found.append(f"ratios.{kind}: must be >= 0")
        found += self._mixing_problems()
        for name, value in (("max_seq_len", self.max_seq_len), ("workers", self.workers)):
            if value < 1:
                found.append(f"{name}: must be >= 1")
        if self.shard_max_tokens < self.max_seq_len:
            found.append("shard_max_tokens: must be >= max_seq_len")
        if self.max_pairs is not None and self.max_pairs < 1:
            found.append("max_pairs: must be >= 1 (or null for all)")
        if self.dev_max_pairs is not None and self.dev_max_pairs < 1:
            found.append("dev_max_pairs: must be >= 1 (or null for all)")
        return found

    def _mixing_problems(self) -> list[str]:
        try:
            names = [f"stage{i + 1}" for i in range(len(parse_curriculum(self.curriculum)))]
        except CurriculumError:
            return []
        return [
            f"stage_mixing.{key}: no such stage (stages: {', '.join(names)})"
            for key in self.stage_mixing
            if key not in names
        ]

    def mixing_for(self, stage: str) -> MixConfig:
        """The mixing of a stage folder (`stage2-mt` -> `stage_mixing.stage2` or `mixing`);
        the dev split is never mixed: it holds every held-out line once."""
        if not stage.startswith("stage"):
            return MixConfig()
        return self.stage_mixing.get(stage.split("-")[0], self.mixing)

    def _pair_problems(self) -> list[str]:
        found = []
        if not self.pairs:
            found.append("pairs: at least one language pair is required (e.g. [de-en])")
        for index, pair in enumerate(self.pairs):
            codes = pair_codes(pair)
            if codes is None:
                found.append(f"pairs[{index}]: {pair!r} is not of the form src-tgt (e.g. de-en)")
                continue
            found += [
                f"pairs[{index}]: unknown language code {code!r}; add it to language_names"
                for code in codes
                if unknown_codes([code], self.language_names)
            ]
        for pair in self.corpora:
            if pair not in self.pairs:
                found.append(f"corpora.{pair}: not one of pairs {self.pairs}")
        return found + self._corpus_problems()

    def _corpus_problems(self) -> list[str]:
        """Every pair needs a corpus (its own in `corpora`, else `corpus`) that can read it."""
        found = []
        for pair in self.pairs:
            codes = pair_codes(pair)
            if pair in self.corpora:
                key, spec = f"corpora.{pair}", self.corpora[pair]
            elif self.corpus is None:
                found.append(f"corpus: required for pair {pair} (not covered by corpora)")
                continue
            else:
                key, spec = "corpus", self.corpus
            if codes is not None and spec.problems(key) == []:
                found += spec.pair_problems(key, *codes)
        return found

    def language_pairs(self) -> list[tuple[str, str]]:
        return [tuple(pair.split("-")) for pair in self.pairs]  # type: ignore[misc]

    def corpus_for(self, src: str, tgt: str) -> CorpusSpec:
        spec = self.corpora.get(f"{src}-{tgt}", self.corpus)
        assert spec is not None, "checked by problems(): every pair has a corpus"
        return spec

    def stages(self) -> list[list[str]]:
        return parse_curriculum(self.curriculum)


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Load a recipe file, or a shipped recipe by name (`freedict`)."""
    return load_config(Recipe, resolve(path, RECIPES_PACKAGE, ".yaml"), overrides)
