"""The data-prep pipeline: corpora -> aligned corpus -> instructions -> shards.

`build(recipe, out_dir)` writes, inside a temporary folder that is renamed onto
`out_dir` only when everything succeeded:

    corpus/{src}-{tgt}.{src|tgt}       cleaned, line-aligned text
    alignments/{src}-{tgt}.{set}       the link sets the samples read (Pharaoh), when a
                                       stage needs links: `align.links`' sets, and the
                                       union when AlignInstruct draws negatives
    stage1-mt+align/shard-*.{bin,idx}  token and loss-mask shards, one folder per stage
    dev/shard-*.{bin,idx}, dev/corpus/ MTInstruct samples of the dev split (when there is one)
    dev/align.jsonl, dev/alignments/   held-out AlignInstruct samples (when a stage uses Align)
    recipe.yaml, manifest.json         the resolved recipe; counts, identities, sha256s,
                                       and the seconds each phase took (`timings`)

Each pair is read, cleaned, word-tokenised, aligned (train and dev lines in one aligner
run) and symmetrised once (`data_prep.aligned`), pairs in parallel in `workers`
processes. Each stage then cuts the aligned corpora into chunks that the same worker
processes turn into samples and token ids; this process writes them in order, with at
most `2 * workers` chunks in flight, so memory stays flat however large the corpus is.
A stage with ReviseInstruct builds its samples in this process instead (its wrong-word
pool carries from line to line), and the workers only tokenise.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import shutil
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm import tqdm

from core.fileio import sha256_file, write_json, write_lines
from core.typed_config import to_dict
from data_prep import mixing, output
from data_prep.align import LINKED_TYPES, NEGATIVE_LINKS
from data_prep.aligned import (
    PHASES,
    SCRATCH,
    AlignedCorpus,
    BuildError,
    Chunk,
    CorpusRef,
    PairPlan,
    prepare_pair,
    read_chunk,
)
from data_prep.contract.chat import ChatFormat, chat_format
from data_prep.contract.languages import language_name
from data_prep.contract.readers import corpus_files
from data_prep.contract.shards import token_dtype
from data_prep.contract.templates import load_templates
from data_prep.contract.tokenizer import load_tokenizer, tokenizer_identity
from data_prep.instructions import BuildSettings, InstructionBuilder, Sample
from data_prep.recipe import Recipe, stage_name
from data_prep.shards import Encoded, ShardWriter, encode_batch
from data_prep.wordtok import WORDTOK_VERSION, segmentation

__all__ = ["BuildError", "build", "default_cache_dir", "dev_available", "missing_inputs"]

log = logging.getLogger(__name__)
MANIFEST_VERSION = 1
BATCH_SIZE = 256
STAGE_PHASES: tuple[str, ...] = ("instructions", "encode", "write")


def default_cache_dir() -> Path:
    root = os.environ.get("ALIGNINSTRUCT_CACHE") or Path.home() / ".cache" / "aligninstruct"
    return Path(root)


def build(
    recipe: Recipe,
    out_dir: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the whole pipeline for `recipe`; returns the manifest."""
    output.check_output_dir(out_dir, overwrite=overwrite, marker="manifest.json")
    load_templates(recipe.templates)  # a bad templates file is reported before missing data
    missing = missing_inputs(recipe)
    if missing:
        listed = "\n".join(f"  - {path}" for path in missing)
        raise BuildError(f"{len(missing)} input file(s) missing:\n{listed}")
    with output.output_dir(out_dir, overwrite=overwrite, marker="manifest.json") as work:
        return _build_into(recipe, work, Path(cache_dir or default_cache_dir()), progress)


def missing_inputs(recipe: Recipe) -> list[str]:
    """Every corpus file the recipe reads that does not exist, listed before any work."""
    missing = []
    for src, tgt in recipe.language_pairs():
        for path in corpus_files(recipe.corpus_for(src, tgt), src, tgt, recipe.split):
            if not path.exists():
                missing.append(str(path))
    return missing


def link_plan(recipe: Recipe) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(every link set some stage reads, those whose corpus statistics samples read).

    The one place that maps instruction types to link sets: `align.links` names the set
    of each type's true statements; AlignInstruct's negatives read the union."""
    kinds = {kind for stage in recipe.stages() for kind in stage if kind in LINKED_TYPES}
    configs = {"align": recipe.align_instruct, "hint": recipe.hint_instruct}
    configs["revise"] = recipe.revise_instruct
    needed = {recipe.align.link_set(kind) for kind in kinds}
    needed |= {NEGATIVE_LINKS} if "align" in kinds else set()
    stats = {recipe.align.link_set(k) for k in kinds if configs[k].min_consistency > 0}
    return tuple(sorted(needed)), tuple(sorted(stats))


def pair_plans(recipe: Recipe, work: Path, align_cache: Path) -> list[PairPlan]:
    """What each pair's aligned corpus holds: the dev split is read when it is built,
    and aligned with the train lines when held-out AlignInstruct samples are built."""
    link_sets, stats_sets = link_plan(recipe)
    dev_links = bool(link_sets) and any("align" in kinds for kinds in recipe.stages())
    return [
        PairPlan(
            src,
            tgt,
            recipe,
            work,
            align_cache,
            link_sets,
            stats_sets,
            dev=recipe.dev and dev_available(recipe, src, tgt),
            dev_links=dev_links,
        )
        for src, tgt in recipe.language_pairs()
    ]


_WORKER_TOKENIZER: Any = None
_WORKER_CHAT: ChatFormat | None = None


def _init_worker(path: str, chat: ChatFormat | None) -> None:
    global _WORKER_TOKENIZER, _WORKER_CHAT
    # One process per core already: the Rust tokenizer must not start threads of its own.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _WORKER_TOKENIZER, _WORKER_CHAT = load_tokenizer(path), chat


class Runner:
    """`workers` processes (each with the tokenizer) that map jobs in order, at most
    `2 * workers` in flight; with one worker, jobs run in this process."""

    def __init__(self, workers: int, tokenizer_path: str, chat: ChatFormat | None) -> None:
        self.workers = workers
        self._pool: Any = None
        if workers <= 1:
            _init_worker(tokenizer_path, chat)
            return
        # fork: workers start in milliseconds instead of re-importing transformers; the
        # parent has not run the Rust tokenizer's thread pool yet, so forking is safe.
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        context = mp.get_context(method)
        self._pool = context.Pool(
            workers, initializer=_init_worker, initargs=(tokenizer_path, chat)
        )

    def ordered(self, function: Callable[[Any], Any], jobs: Iterable[Any]) -> Iterator[Any]:
        if self._pool is None:
            yield from map(function, jobs)
            return
        pending: deque = deque()
        for job in jobs:
            pending.append(self._pool.apply_async(function, (job,)))
            if len(pending) >= 2 * self.workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()


def _build_into(recipe: Recipe, work: Path, cache_dir: Path, progress: bool) -> dict[str, Any]:
    started = time.time()
    templates = load_templates(recipe.templates)
    tokenizer = load_tokenizer(recipe.tokenizer)
    identity = tokenizer_identity(tokenizer)
    chat = chat_format(tokenizer) if recipe.chat_template else None
    names = {
        code: language_name(code, recipe.language_names)
        for p in recipe.pairs
        for code in p.split("-")
    }
    timings = Timings()
    runner = Runner(recipe.workers, recipe.tokenizer, chat)
    try:
        with timings.step("prepare"):
            corpora = list(
                runner.ordered(prepare_pair, pair_plans(recipe, work, cache_dir / "align"))
            )
        for corpus in corpora:
            timings.phases.update(corpus.seconds)
            timings.per_pair[corpus.name] = corpus.seconds
            # Logged here, not in the worker that cleaned the pair: this is the build's log.
            for report in (corpus.report, corpus.dev_report):
                if report is not None and report.warning:
                    log.warning(report.warning)
        stage_entries = []
        for index, kinds in enumerate(recipe.stages()):
            name = stage_name(index, kinds)
            settings = _settings(recipe, templates, names, name)
            with timings.step(name):
                stage_entries.append(
                    _build_stage(
                        runner, recipe, settings, kinds, corpora, work / name, identity,
                        timings, progress,
                    )
                )  # fmt: skip
        with timings.step("dev"):
            dev = _build_dev(
                runner, recipe, work, corpora, (templates, names, identity), timings, progress
            )
    finally:
        runner.close()
    shutil.rmtree(work / SCRATCH, ignore_errors=True)
    write_lines(work / "recipe.yaml", yaml.safe_dump(to_dict(recipe), sort_keys=False).splitlines())
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "recipe": recipe.name,
        "seed": recipe.seed,
        "curriculum": recipe.curriculum,
        "template_version": templates.version,
        "prompt_format": chat.record() if chat else {"chat_template": False},
        "wordtok_version": WORDTOK_VERSION,
        "segmentation": {code: segmentation(code) for code in names},
        "tokenizer": identity,
        "max_seq_len": recipe.max_seq_len,
        "token_dtype": token_dtype(identity["vocab_size"]).__name__,
        "links": {kind: recipe.align.link_set(kind) for kind in LINKED_TYPES}
        | {"align_negatives": NEGATIVE_LINKS},
        "corpora": {c.name: _corpus_entry(c, work) for c in corpora},
        "stages": stage_entries,
        "build_seconds": round(time.time() - started, 2),
        "timings": timings.as_dict(recipe.workers, sum(c.report.kept for c in corpora)),
    }
    if dev is not None:
        manifest["dev"] = dev
    log.info("timings: %s", json.dumps(manifest["timings"]))
    write_json(work / "manifest.json", manifest)
    return manifest


@dataclass
class Timings:
    """Busy seconds per phase (summed over the processes that ran it) and wall seconds
    per step of the build."""

    phases: Counter[str] = field(default_factory=Counter)
    steps: dict[str, float] = field(default_factory=dict)
    per_pair: dict[str, dict[str, float]] = field(default_factory=dict)

    def step(self, name: str) -> Any:
        timings = self

        class _Step:
            def __enter__(self) -> None:
                self.started = time.perf_counter()

            def __exit__(self, *exc: object) -> None:
                timings.steps[name] = round(time.perf_counter() - self.started, 3)

        return _Step()

    def as_dict(self, workers: int, pairs: int) -> dict[str, Any]:
        wall = sum(self.steps.values())
        return {
            "workers": workers,
            "train_pairs": pairs,
            "phases": {p: round(self.phases[p], 3) for p in (*PHASES, *STAGE_PHASES)},
            "steps": self.steps,
            "per_pair": self.per_pair,
            "pairs_per_second": round(pairs / wall, 1) if wall else None,
        }


def _settings(recipe: Recipe, templates: Any, names: dict[str, str], stage: str) -> BuildSettings:
    return BuildSettings(
        templates=templates,
        names=names,
        ratios=recipe.ratios,
        align=recipe.align_instruct,
        hint=recipe.hint_instruct,
        revise=recipe.revise_instruct,
        both_directions=recipe.directions == "both",
        seed=recipe.seed,
        stage=stage,
        links={kind: recipe.align.link_set(kind) for kind in LINKED_TYPES},
    )


@dataclass(frozen=True)
class ChunkJob:
    """Build the samples of one chunk of one pair and tokenise them (or, with `rows`,
    return them as dev/align.jsonl rows)."""

    corpus: CorpusRef
    chunk: Chunk
    settings: BuildSettings
    kinds: tuple[str, ...]
    max_len: int
    stats: str | None = None
    line_base: int = 0
    rows: bool = False
    # Pair mixing: how often each line of the chunk is used (None: each once).
    repeats: tuple[int, ...] | None = None


@dataclass
class ChunkResult:
    lines: int
    counts: Counter[str]
    skipped: Counter[str]
    seconds: dict[str, float]
    encoded: Encoded | None = None
    rows: list[str] | None = None


def _count(samples: list[Sample]) -> Counter[str]:
    return Counter(f"{s.kind}:{s.src}-{s.tgt}" for s in samples)


_EMPTY = Encoded(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))


def run_chunk(job: ChunkJob) -> ChunkResult:
    """In a worker: one chunk's samples, tokenised (the samples depend only on the line,
    not on the chunk: each line has its own seeded RNG)."""
    started = time.perf_counter()
    builder = InstructionBuilder(job.settings, list(job.kinds))
    lines = read_chunk(job.corpus, job.chunk, job.stats, job.line_base)
    samples = [
        sample
        for pair, uses in zip(lines, _uses(job.repeats, job.chunk.lines), strict=True)
        for repeat in range(uses)
        for sample in builder.samples(pair, repeat)
    ]
    built = time.perf_counter()
    result = ChunkResult(job.chunk.lines, _count(samples), builder.skipped, {})
    if job.rows:
        result.rows = [_align_row(sample) for sample in samples]
    else:
        batch = [(s.prompt, s.answer) for s in samples]
        result.encoded = (
            encode_batch(_WORKER_TOKENIZER, batch, job.max_len, _WORKER_CHAT) if batch else _EMPTY
        )
    result.seconds = {"instructions": built - started, "encode": time.perf_counter() - built}
    return result


def _encode_job(job: tuple[list[tuple[str, str]], int]) -> ChunkResult:
    """In a worker: tokenise a batch of samples built in the parent (ReviseInstruct)."""
    started = time.perf_counter()
    encoded = encode_batch(_WORKER_TOKENIZER, *job, _WORKER_CHAT)
    seconds = {"encode": time.perf_counter() - started}
    return ChunkResult(0, Counter(), Counter(), seconds, encoded=encoded)


def _align_row(sample: Sample) -> str:
    row = {"src": sample.src, "tgt": sample.tgt, "prompt": sample.prompt}
    return json.dumps({**row, "answer": sample.answer.strip()}, ensure_ascii=False)


def _uses(repeats: Iterable[int] | None, lines: int) -> Iterable[int]:
    """How often each line is used: `repeats` from pair mixing, or each once."""
    return [1] * lines if repeats is None else repeats


def _chunk_repeats(repeats: list[int] | None, chunk: Chunk) -> tuple[int, ...] | None:
    """The part of a pair's per-line repeat counts (mixing) that falls in `chunk`."""
    if repeats is None:
        return None
    return tuple(repeats[chunk.first : chunk.first + chunk.lines])


def _stage_jobs(
    corpora: list[AlignedCorpus],
    split: str,
    uses: dict[str, list[int] | None],
    **job: Any,
) -> Iterator[ChunkJob]:
    for corpus in corpora:
        for chunk in corpus.chunks_of(split):
            repeats = _chunk_repeats(uses[corpus.name], chunk)
            yield ChunkJob(corpus.ref, chunk, repeats=repeats, **job)


def _sequential(
    corpora: list[AlignedCorpus], settings: BuildSettings, kinds: list[str], max_len: int,
    uses: dict[str, list[int] | None], skipped: Counter[str], counts: Counter[str],
    timings: Timings,
) -> Iterator[tuple[list[tuple[str, str]], int]]:  # fmt: skip
    """Batches of samples built here with one builder over every line of every pair, in
    order (ReviseInstruct's pool of wrong words carries from line to line)."""
    builder = InstructionBuilder(settings, kinds)
    batch: list[tuple[str, str]] = []
    started = time.perf_counter()
    for corpus in corpora:
        for chunk in corpus.chunks_of("train"):
            lines = read_chunk(corpus.ref, chunk, "train")
            repeats = _uses(_chunk_repeats(uses[corpus.name], chunk), chunk.lines)
            for pair, times in zip(lines, repeats, strict=True):
                for sample in (s for k in range(times) for s in builder.samples(pair, k)):
                    counts[f"{sample.kind}:{sample.src}-{sample.tgt}"] += 1
                    batch.append((sample.prompt, sample.answer))
                    if len(batch) == BATCH_SIZE:
                        timings.phases["instructions"] += time.perf_counter() - started
                        yield batch, max_len
                        started = time.perf_counter()
                        batch = []
    skipped.update(builder.skipped)
    timings.phases["instructions"] += time.perf_counter() - started
    if batch:
        yield batch, max_len


def _build_stage(
    runner: Runner,
    recipe: Recipe,
    settings: BuildSettings,
    kinds: list[str],
    corpora: list[AlignedCorpus],
    folder: Path,
    identity: dict[str, Any],
    timings: Timings,
    progress: bool,
    split: str = "train",
) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    total = sum(c.lines(split) for c in corpora)
    bar = tqdm(total=total, desc=folder.name, unit="pair", disable=not progress)
    # Pair mixing: the repeat counts of every line, drawn here once per stage; each chunk
    # job carries its slice, so the samples do not depend on how the stage is cut.
    mix = recipe.mixing_for(folder.name)
    sizes = {c.name: c.lines(split) for c in corpora}
    mix_entry = mixing.summary(mix, sizes)
    uses = mixing.line_repeats(mix, sizes, recipe.seed, folder.name)
    if "revise" in kinds:
        batches = _sequential(
            corpora, settings, kinds, recipe.max_seq_len, uses, skipped, counts, timings
        )
        results = runner.ordered(_encode_job, batches)
    else:
        jobs = _stage_jobs(
            corpora, split, uses, settings=settings, kinds=tuple(kinds),
            max_len=recipe.max_seq_len, stats="train" if split == "train" else None,
        )  # fmt: skip
        results = runner.ordered(run_chunk, jobs)
    started = time.perf_counter()
    writer = ShardWriter(folder, token_dtype(identity["vocab_size"]), recipe.shard_max_tokens)
    stats: Counter[str] = Counter()
    for result in results:
        writing = time.perf_counter()
        encoded = result.encoded
        assert encoded is not None
        writer.add(encoded)
        timings.phases["write"] += time.perf_counter() - writing
        timings.phases.update(result.seconds)
        counts.update(result.counts)
        skipped.update(result.skipped)
        stats["samples"] += len(encoded.lengths)
        stats["tokens"] += int(encoded.lengths.sum())
        stats["answer_tokens"] += int((encoded.lengths - encoded.prompt_lengths).sum())
        stats["truncated"] += encoded.truncated
        stats["dropped_prompt_too_long"] += encoded.dropped
        bar.update(result.lines)
    writing = time.perf_counter()
    shards = writer.close()
    timings.phases["write"] += time.perf_counter() - writing
    bar.close()
    seconds = time.perf_counter() - started
    log.info(
        "%s: %d samples, %d tokens, %.0f tokens/s",
        folder.name,
        stats["samples"],
        stats["tokens"],
        stats["tokens"] / max(seconds, 1e-9),
    )
    return {
        "name": folder.name,
        "kinds": kinds,
        "samples": stats["samples"],
        "tokens": stats["tokens"],
        "answer_tokens": stats["answer_tokens"],
        "truncated": stats["truncated"],
        "dropped": {"prompt_too_long": stats["dropped_prompt_too_long"]},
        "seconds": round(seconds, 2),
        "tokens_per_second": round(stats["tokens"] / max(seconds, 1e-9)),
        "skipped": dict(sorted(skipped.items())),
        "mixing": mix_entry,
        "by_kind": _by_kind(counts),
        "by_direction": dict(sorted(counts.items())),
        "shards": [vars(s) for s in shards],
    }


def _by_kind(counts: Counter[str]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for key, value in counts.items():
        totals[key.split(":")[0]] += value
    return dict(sorted(totals.items()))


def _corpus_entry(corpus: AlignedCorpus, work: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {"clean": corpus.report.as_dict()}
    entry["files"] = {str(p.relative_to(work)): sha256_file(p) for p in corpus.files}
    if corpus.alignment_key is not None:
        entry["alignment_cache_key"] = corpus.alignment_key
    return entry


# The dev split: held-out MTInstruct shards (both directions, for a dev loss) and, when the
# recipe trains AlignInstruct, held-out AlignInstruct samples (to measure whether the
# model learned the discriminator). Dev pairs are word-aligned jointly with the training
# pairs, in the same aligner run (an aligner on 500 sentences alone is poor); the
# link-consistency statistics of dev samples come from train + dev lines, and only dev
# lines become samples.


def dev_available(recipe: Recipe, src: str, tgt: str) -> bool:
    """Whether (src, tgt) has a dev split of its own (never the training files again)."""
    spec = recipe.corpus_for(src, tgt)
    if recipe.split != "train" or (spec.src_file and spec.tgt_file):
        return False
    if spec.format in ("tsv", "hf") and "{split}" not in spec.path:
        manifest = Path(spec.path) / "dataset_dict.json"  # a save_to_disk DatasetDict
        if spec.format == "tsv" or not manifest.is_file():
            return False
        return bool({"dev", "validation"} & set(json.loads(manifest.read_text())["splits"]))
    if spec.format == "hf":
        import glob

        return bool(glob.glob(spec.path.replace("{split}", "dev")))
    return all(path.is_file() for path in corpus_files(spec, src, tgt, "dev"))


def _build_dev(
    runner: Runner,
    recipe: Recipe,
    work: Path,
    corpora: list[AlignedCorpus],
    shared: tuple[Any, dict[str, str], dict[str, Any]],
    timings: Timings,
    progress: bool,
) -> dict[str, Any] | None:
    """Write dev/ and return its manifest entry (shaped like a stage's), or None."""
    with_dev = [c for c in corpora if c.dev_report is not None]
    if not with_dev:
        return None
    templates, names, identity = shared
    folder = work / "dev"
    settings = replace(_settings(recipe, templates, names, "dev"), both_directions=True)
    entry = _build_stage(
        runner, recipe, settings, ["mt"], with_dev, folder, identity, timings, progress, "dev"
    )
    entry["clean"] = {c.name: c.dev_report.as_dict() for c in with_dev if c.dev_report}
    files = [path for c in with_dev for path in c.dev_files]
    if any("align" in kinds for kinds in recipe.stages()):
        align_settings = replace(settings, stage="dev-align", ratios={"align": 1.0})
        target = folder / "align.jsonl"
        entry["align"] = _write_dev_align(runner, recipe, align_settings, with_dev, target)
        entry["align_samples"] = str(target.relative_to(work))
        files.append(target)
    entry["files"] = {str(path.relative_to(work)): sha256_file(path) for path in files}
    return entry


def _write_dev_align(
    runner: Runner,
    recipe: Recipe,
    settings: BuildSettings,
    corpora: list[AlignedCorpus],
    target: Path,
) -> dict[str, Any]:
    """dev/align.jsonl: {"src", "tgt", "prompt", "answer": "True"|"False"} per line."""
    jobs = (
        ChunkJob(
            corpus.ref,
            chunk,
            settings,
            ("align",),
            recipe.max_seq_len,
            stats="joint",
            line_base=corpus.lines("train"),
            rows=True,
        )
        for corpus in corpora
        for chunk in corpus.chunks_of("dev")
    )
    answers: Counter[str] = Counter()
    directions: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    rows: list[str] = []
    for result in runner.ordered(run_chunk, jobs):
        assert result.rows is not None
        rows += result.rows
        skipped.update(result.skipped)
        for key, value in result.counts.items():
            directions[key.split(":")[1]] += value
    for row in rows:
        answers[json.loads(row)["answer"]] += 1
    write_lines(target, rows)
    return {
        "samples": len(rows),
        "by_answer": dict(sorted(answers.items())),
        "by_direction": dict(sorted(directions.items())),
        "skipped": dict(sorted(skipped.items())),
    }
