"""The aligned corpus of a language pair: read, cleaned, word-tokenised, aligned and
symmetrised once; every stage of a build reads it.

`prepare_pair(plan)` reads the raw corpus once (the train split, then the dev split when
one is built) and writes:

    corpus/{src}-{tgt}.{src|tgt}              cleaned train lines (build output)
    dev/corpus/{src}-{tgt}.{src|tgt}          cleaned dev lines (build output)
    .aligned/{src}-{tgt}/records              each line with its words (`wordtok.words`,
                                              the one tokenisation), pickled in chunks
    .aligned/{src}-{tgt}/{src,tgt}.tok        the aligner's input: train lines, then dev

then aligns train and dev lines together in one aligner run (or reads the cache), and in
one pass over the directional links writes every link set an instruction type reads
(`.aligned/.../links`, chunked like the records; `alignments/{src}-{tgt}.{set}` for the
train lines and `dev/alignments/...` for the dev lines) and the corpus statistics of the
consistency filter: over the train lines (read by the training stages) and over train +
dev (read by the held-out dev samples, which are never training lines).

`read_chunk` turns one chunk back into `AlignedPair`s, so a stage can be cut into
chunks that worker processes build independently. Nothing after `prepare_pair` reads
the raw corpus or tokenises a line again.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import pickle
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from data_prep.align import align_files, aligner_line, format_pharaoh, symmetrize
from data_prep.cleaning import CleanReport, clean
from data_prep.contract.readers import read_pairs
from data_prep.instructions import AlignedPair, LinkStats, combined, count_links
from data_prep.recipe import Recipe
from data_prep.wordtok import Word, words

log = logging.getLogger(__name__)
CHUNK_LINES = 1024
SCRATCH = ".aligned"  # inside the build's temporary folder; removed before it is renamed
PHASES: tuple[str, ...] = ("read_clean", "tokenise", "align", "symmetrise")


class BuildError(RuntimeError):
    """A build that cannot go on; the message names the pair or file."""


@dataclass(frozen=True)
class PairPlan:
    """What one pair's aligned corpus must hold."""

    src: str
    tgt: str
    recipe: Recipe
    work: Path
    cache: Path
    link_sets: tuple[str, ...] = ()  # symmetrisations to compute; empty: no alignment
    stats_sets: tuple[str, ...] = ()  # link sets whose corpus statistics samples read
    dev: bool = False  # also read the pair's dev split
    dev_links: bool = False  # and align it together with the train lines

    def aligned_splits(self) -> tuple[str, ...]:
        if not self.link_sets:
            return ()
        return ("train", "dev") if self.dev and self.dev_links else ("train",)

    @property
    def name(self) -> str:
        return f"{self.src}-{self.tgt}"


@dataclass(frozen=True)
class Chunk:
    """Up to CHUNK_LINES consecutive lines of one split (`first`: 0-based in the split)."""

    split: str
    first: int
    lines: int
    records_offset: int
    links_offset: int | None = None


@dataclass(frozen=True)
class CorpusRef:
    """What a worker needs to read one pair's aligned corpus (cheap to send)."""

    src: str
    tgt: str
    folder: Path

    def stats_path(self, which: str) -> Path:
        """`train`: statistics of the train lines; `joint`: of train + dev lines."""
        return self.folder / f"stats-{which}.pkl"


@dataclass
class AlignedCorpus:
    """Where one pair's aligned corpus is, and what was counted making it."""

    src: str
    tgt: str
    folder: Path
    report: CleanReport
    dev_report: CleanReport | None
    chunks: list[Chunk]
    link_sets: tuple[str, ...]
    files: list[Path]  # build outputs of the train lines (cleaned text, link sets)
    dev_files: list[Path]
    alignment_key: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.src}-{self.tgt}"

    def chunks_of(self, split: str) -> list[Chunk]:
        return [chunk for chunk in self.chunks if chunk.split == split]

    def lines(self, split: str) -> int:
        return sum(chunk.lines for chunk in self.chunks_of(split))

    @property
    def ref(self) -> CorpusRef:
        return CorpusRef(self.src, self.tgt, self.folder)


class _Timer:
    """Seconds per phase, accumulated by `lap` (the time since the previous lap)."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] += now - self._last
        self._last = now


def prepare_pair(plan: PairPlan) -> AlignedCorpus:
    """Read, clean, tokenise, align and symmetrise one pair (see the module docstring)."""
    folder = plan.work / SCRATCH / plan.name
    folder.mkdir(parents=True, exist_ok=True)
    timer = _Timer()
    corpus = _read_pair(plan, folder, timer)
    if plan.link_sets:
        tok = folder / f"{plan.src}.tok", folder / f"{plan.tgt}.tok"
        alignment = align_files(*tok, plan.recipe.align, plan.cache, (plan.src, plan.tgt))
        timer.lap("align")
        corpus.alignment_key = alignment.key
        _symmetrise(plan, corpus, alignment.lines())
        timer.lap("symmetrise")
    corpus.seconds = {phase: round(timer.seconds[phase], 3) for phase in PHASES}
    return corpus


def _split_recipe(plan: PairPlan, split: str) -> Recipe:
    if split == "train":
        return plan.recipe
    return replace(plan.recipe, split=split, max_pairs=plan.recipe.dev_max_pairs)


def _text_files(plan: PairPlan, split: str) -> list[Path]:
    base = plan.work / ("corpus" if split == "train" else "dev/corpus")
    return [base / f"{plan.name}.{lang}" for lang in (plan.src, plan.tgt)]


def _read_pair(plan: PairPlan, folder: Path, timer: _Timer) -> AlignedCorpus:
    """The one pass over the raw corpus: clean, write the text, tokenise, chunk."""
    reports: dict[str, CleanReport] = {}
    chunks: list[Chunk] = []
    lowercase = plan.recipe.align.lowercase
    with contextlib.ExitStack() as stack:
        records = stack.enter_context(open(folder / "records", "wb"))
        tok_files = [
            stack.enter_context(open(folder / f"{lang}.tok", "w", encoding="utf-8"))
            for lang in (plan.src, plan.tgt)
            if plan.link_sets
        ]
        for split in ("train", "dev") if plan.dev else ("train",):
            tok = tok_files if split in plan.aligned_splits() else []
            recipe = _split_recipe(plan, split)
            report = reports[split] = CleanReport()
            spec = recipe.corpus_for(plan.src, plan.tgt)
            raw = read_pairs(spec, plan.src, plan.tgt, recipe.split)
            langs = (plan.src, plan.tgt)
            kept = itertools.islice(clean(raw, recipe.clean, report, langs), recipe.max_pairs)
            paths = _text_files(plan, split)
            paths[0].parent.mkdir(parents=True, exist_ok=True)
            text = [stack.enter_context(open(p, "w", encoding="utf-8")) for p in paths]
            rows: list[tuple[str, str, list[Word], list[Word]]] = []
            count = 0
            timer.lap("read_clean")
            for src, tgt in kept:
                text[0].write(src + "\n")
                text[1].write(tgt + "\n")
                timer.lap("read_clean")
                # The one tokenisation of the line, by its language's segmentation.
                src_words, tgt_words = (
                    (words(src, plan.src), words(tgt, plan.tgt)) if tok else ([], [])
                )
                if tok:
                    tok[0].write(aligner_line((w.text for w in src_words), lowercase) + "\n")
                    tok[1].write(aligner_line((w.text for w in tgt_words), lowercase) + "\n")
                rows.append((src, tgt, src_words, tgt_words))
                if len(rows) == CHUNK_LINES:
                    chunks.append(_dump(records, rows, split, count))
                    count += len(rows)
                    rows = []
                timer.lap("tokenise")
            if rows:
                chunks.append(_dump(records, rows, split, count))
            for handle in text:
                handle.close()
            timer.lap("tokenise")
            log.info("%s %s: %s", plan.name, split, report.as_dict())
            # Recorded in the report (the manifest's clean entry); the build logs it.
            name = plan.name if split == "train" else f"{plan.name} ({split})"
            report.check_loss(name, recipe.clean.warn_drop_share)
            if report.kept == 0:
                raise BuildError(
                    f"{plan.name}: no sentence pair of its {split} split survived cleaning "
                    f"({report.as_dict()})"
                )
    return AlignedCorpus(
        plan.src,
        plan.tgt,
        folder,
        reports["train"],
        reports.get("dev"),
        chunks,
        plan.link_sets,
        _text_files(plan, "train"),
        _text_files(plan, "dev") if plan.dev else [],
    )


def _dump(handle: BinaryIO, rows: list[Any], split: str, first: int) -> Chunk:
    offset = handle.tell()
    pickle.dump(rows, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return Chunk(split, first, len(rows), offset)


def _load(path: Path, offset: int) -> Any:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return pickle.load(handle)


def _link_files(plan: PairPlan, split: str) -> list[Path]:
    base = plan.work / ("alignments" if split == "train" else "dev/alignments")
    return [base / f"{plan.name}.{name}" for name in plan.link_sets]


def _symmetrise(plan: PairPlan, corpus: AlignedCorpus, directional: Iterator[Any]) -> None:
    """One pass over records and directional links: every link set, chunked; the link
    set files; the statistics of the train lines and of train + dev."""
    stats = {split: {n: LinkStats() for n in plan.stats_sets} for split in ("train", "dev")}
    chunks = []
    with contextlib.ExitStack() as stack:
        links_out = stack.enter_context(open(corpus.folder / "links", "wb"))
        outputs: dict[str, list[Any]] = {}
        for split in plan.aligned_splits():
            paths = _link_files(plan, split)
            paths[0].parent.mkdir(parents=True, exist_ok=True)
            outputs[split] = [stack.enter_context(open(p, "w", encoding="utf-8")) for p in paths]
        records = stack.enter_context(open(corpus.folder / "records", "rb"))
        for chunk in corpus.chunks:
            rows, link_rows = pickle.load(records), []
            if chunk.split not in outputs:  # dev lines that need no links
                chunks.append(chunk)
                continue
            for (src, tgt, sw, tw), (fwd, rev) in zip(rows, directional, strict=False):
                links = {n: symmetrize(fwd, rev, len(sw), len(tw), n) for n in plan.link_sets}
                link_rows.append(links)
                for handle, name in zip(outputs[chunk.split], plan.link_sets, strict=True):
                    handle.write(format_pharaoh(links[name]) + "\n")
                if plan.stats_sets:
                    pair = AlignedPair(0, plan.src, plan.tgt, src, tgt, sw, tw, links)
                    for name in plan.stats_sets:
                        count_links(stats[chunk.split][name], pair, name)
            if len(link_rows) != chunk.lines:
                raise BuildError(f"{plan.name}: the aligner returned fewer lines than it was given")
            chunks.append(replace(chunk, links_offset=links_out.tell()))
            pickle.dump(link_rows, links_out, protocol=pickle.HIGHEST_PROTOCOL)
    if next(directional, None) is not None:
        raise BuildError(f"{plan.name}: the aligner returned more lines than it was given")
    corpus.chunks = chunks
    corpus.files += [p for p in _link_files(plan, "train")]
    if "dev" in plan.aligned_splits():
        corpus.dev_files += _link_files(plan, "dev")
    joint = {n: combined(stats["train"][n], stats["dev"][n]) for n in plan.stats_sets}
    for which, value in (("train", stats["train"]), ("joint", joint)):
        with open(corpus.ref.stats_path(which), "wb") as handle:
            pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)


_STATS: dict[Path, dict[str, LinkStats]] = {}  # per process: the last statistics loaded


def _stats(path: Path) -> dict[str, LinkStats]:
    if path not in _STATS:
        _STATS.clear()  # one pair's statistics at a time: memory stays that of one pair
        with open(path, "rb") as handle:
            _STATS[path] = pickle.load(handle)
    return _STATS[path]


def read_chunk(
    corpus: CorpusRef, chunk: Chunk, stats: str | None = None, line_base: int = 0
) -> Iterator[AlignedPair]:
    """The lines of one chunk as `AlignedPair`s, numbered `line_base` + 1-based position
    in their split; `stats`: `train` or `joint` statistics attached, or none."""
    rows = _load(corpus.folder / "records", chunk.records_offset)
    no_links: list[dict[str, Any]] = [{}] * len(rows)
    link_rows = (
        _load(corpus.folder / "links", chunk.links_offset)
        if chunk.links_offset is not None
        else no_links
    )
    # Statistics exist where links do (a pair aligned for some stage).
    linked = chunk.links_offset is not None
    attached = _stats(corpus.stats_path(stats)) if stats and linked else {}
    for k, ((src, tgt, sw, tw), links) in enumerate(zip(rows, link_rows, strict=True)):
        line = line_base + chunk.first + k + 1
        yield AlignedPair(line, corpus.src, corpus.tgt, src, tgt, sw, tw, links, attached)


def read_split(
    corpus: AlignedCorpus, split: str = "train", stats: str | None = None, line_base: int = 0
) -> Iterator[AlignedPair]:
    """Every line of one split, chunk after chunk."""
    for chunk in corpus.chunks_of(split):
        yield from read_chunk(corpus.ref, chunk, stats, line_base)
