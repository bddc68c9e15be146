"""The data-prep pipeline: corpora -> cleaned -> aligned -> instructions -> shards.

`build(recipe, out_dir)` writes, inside a temporary folder that is renamed onto
`out_dir` only when everything succeeded:

    corpus/{src}-{tgt}.{src|tgt}       cleaned, line-aligned text
    alignments/{src}-{tgt}.{method}    symmetrised Pharaoh links (when a stage needs them)
    stage1-mt+align/shard-*.{bin,idx}  token and loss-mask shards, one folder per stage
    dev/shard-*.{bin,idx}, dev/corpus/ MTInstruct samples of the dev split (when there is one)
    dev/align.jsonl                    held-out AlignInstruct samples (when a stage uses Align)
    recipe.yaml, manifest.json         the resolved recipe; counts, identities, sha256s
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from core.fileio import sha256_file, write_json, write_lines
from core.typed_config import to_dict
from data_prep import mixing, output
from data_prep.align import Alignment, align, format_pharaoh, parse_pharaoh, symmetrize
from data_prep.cleaning import CleanReport, clean
from data_prep.contract.languages import language_name
from data_prep.contract.readers import corpus_files, read_pairs
from data_prep.contract.shards import token_dtype
from data_prep.contract.templates import load_templates
from data_prep.contract.tokenizer import load_tokenizer, tokenizer_identity
from data_prep.instructions import (
    AlignedPair,
    BuildSettings,
    InstructionBuilder,
    LinkStats,
    Sample,
    collect_stats,
)
from data_prep.recipe import UNALIGNED_TYPES, Recipe, stage_name
from data_prep.shards import ShardWriter, encode_stream
from data_prep.wordtok import WORDTOK_VERSION, segmentation, words

log = logging.getLogger(__name__)
MANIFEST_VERSION = 1
BATCH_SIZE = 256


class BuildError(RuntimeError):
    pass


def default_cache_dir() -> Path:
    root = os.environ.get("ALIGNINSTRUCT_CACHE") or Path.home() / ".cache" / "aligninstruct"
    return Path(root)


@dataclass
class PairData:
    src: str
    tgt: str
    src_file: Path
    tgt_file: Path
    report: CleanReport
    alignment: Alignment | None = None
    stats: dict[str, LinkStats] = field(default_factory=dict)

    def ensure_stats(self, link_sets: set[str]) -> None:
        """Corpus-wide link statistics (one extra pass) for the consistency filter."""
        for link_set in sorted(link_sets - set(self.stats)):
            self.stats[link_set] = collect_stats(aligned_pairs(self, {link_set}), link_set)


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


def _build_into(recipe: Recipe, work: Path, cache_dir: Path, progress: bool) -> dict[str, Any]:
    started = time.time()
    templates = load_templates(recipe.templates)
    tokenizer = load_tokenizer(recipe.tokenizer)
    identity = tokenizer_identity(tokenizer)
    names = {
        code: language_name(code, recipe.language_names)
        for p in recipe.pairs
        for code in p.split("-")
    }
    stages = recipe.stages()
    needs_links = any(kind not in UNALIGNED_TYPES for kinds in stages for kind in kinds)
    pairs = [_prepare_pair(recipe, src, tgt, work) for src, tgt in recipe.language_pairs()]
    if needs_links:
        for pair in pairs:
            _align_pair(recipe, pair, work, cache_dir / "align")
    stage_entries = []
    for index, kinds in enumerate(stages):
        name = stage_name(index, kinds)
        settings = _settings(recipe, templates, names, name)
        stage_entries.append(
            _build_stage(recipe, settings, kinds, pairs, work / name, identity, progress)
        )
    dev = _build_dev(recipe, work, pairs, (templates, names, identity), cache_dir, progress)
    write_lines(work / "recipe.yaml", yaml.safe_dump(to_dict(recipe), sort_keys=False).splitlines())
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "recipe": recipe.name,
        "seed": recipe.seed,
        "curriculum": recipe.curriculum,
        "template_version": templates.version,
        "wordtok_version": WORDTOK_VERSION,
        "segmentation": {code: segmentation(code) for code in names},
        "tokenizer": identity,
        "max_seq_len": recipe.max_seq_len,
        "token_dtype": token_dtype(identity["vocab_size"]).__name__,
        "corpora": {f"{p.src}-{p.tgt}": _corpus_entry(p, work) for p in pairs},
        "stages": stage_entries,
        "build_seconds": round(time.time() - started, 2),
    }
    if dev is not None:
        manifest["dev"] = dev
    write_json(work / "manifest.json", manifest)
    return manifest


def _prepare_pair(recipe: Recipe, src: str, tgt: str, work: Path) -> PairData:
    """Read and clean one language pair into corpus/{src}-{tgt}.{lang}."""
    report = CleanReport()
    kept = clean(
        read_pairs(recipe.corpus_for(src, tgt), src, tgt, recipe.split),
        recipe.clean,
        report,
        (src, tgt),
    )
    src_file = work / "corpus" / f"{src}-{tgt}.{src}"
    tgt_file = work / "corpus" / f"{src}-{tgt}.{tgt}"
    src_file.parent.mkdir(parents=True, exist_ok=True)
    with open(src_file, "w", encoding="utf-8") as s, open(tgt_file, "w", encoding="utf-8") as t:
        for src_line, tgt_line in itertools.islice(kept, recipe.max_pairs):
            s.write(src_line + "\n")
            t.write(tgt_line + "\n")
    log.info("%s-%s: %s", src, tgt, report.as_dict())
    if warning := report.check_loss(f"{src}-{tgt}", recipe.clean.warn_drop_share):
        log.warning(warning)
    if report.kept == 0:
        raise BuildError(f"{src}-{tgt}: no sentence pair survived cleaning ({report.as_dict()})")
    return PairData(src, tgt, src_file, tgt_file, report)


def _read_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle]


def _align_pair(recipe: Recipe, pair: PairData, work: Path, cache: Path) -> None:
    src, tgt = _read_lines(pair.src_file), _read_lines(pair.tgt_file)
    langs = (pair.src, pair.tgt)
    pair.alignment = align(src, tgt, recipe.align, cache, langs)
    links = pair.alignment.symmetrized(src, tgt, recipe.align.symmetrization, langs)
    target = work / "alignments" / f"{pair.src}-{pair.tgt}.{recipe.align.symmetrization}"
    write_lines(target, (format_pharaoh(line) for line in links))


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
    )


def _positive_configs(recipe: Recipe, kinds: list[str]) -> list[Any]:
    configs = {"align": recipe.align_instruct, "hint": recipe.hint_instruct}
    configs["revise"] = recipe.revise_instruct
    return [configs[kind] for kind in kinds if kind in configs]


def _link_sets(recipe: Recipe, kinds: list[str]) -> tuple[set[str], set[str]]:
    """(every link set a stage reads, those that need corpus statistics)."""
    configs = _positive_configs(recipe, kinds)
    needed = {c.links for c in configs} | ({"union"} if configs else set())
    return needed, {c.links for c in configs if c.min_consistency > 0}


def aligned_pairs(
    pair: PairData, link_sets: set[str], stats: dict[str, LinkStats] | None = None
) -> Iterator[AlignedPair]:
    """Stream the cleaned corpus of a pair with the requested link sets per line."""
    with contextlib.ExitStack() as stack:
        s = stack.enter_context(open(pair.src_file, encoding="utf-8"))
        t = stack.enter_context(open(pair.tgt_file, encoding="utf-8"))
        fwd_lines = rev_lines = itertools.repeat("")
        if link_sets:
            assert pair.alignment is not None, "a stage needs links but the pair was not aligned"
            fwd_lines = stack.enter_context(open(pair.alignment.fwd_path, encoding="utf-8"))
            rev_lines = stack.enter_context(open(pair.alignment.rev_path, encoding="utf-8"))
        rows = zip(s, t, fwd_lines, rev_lines, strict=False)  # repeat("") is endless
        for line, (src, tgt, fwd, rev) in enumerate(rows, start=1):
            src, tgt = src.rstrip("\n"), tgt.rstrip("\n")
            src_words, tgt_words = words(src, pair.src), words(tgt, pair.tgt)
            fwd_links, rev_links = parse_pharaoh(fwd), parse_pharaoh(rev)
            n, m = len(src_words), len(tgt_words)
            links = {name: symmetrize(fwd_links, rev_links, n, m, name) for name in link_sets}
            yield AlignedPair(
                line, pair.src, pair.tgt, src, tgt, src_words, tgt_words, links, stats or {}
            )


def _build_stage(
    recipe: Recipe,
    settings: BuildSettings,
    kinds: list[str],
    pairs: list[PairData],
    folder: Path,
    identity: dict[str, Any],
    progress: bool,
) -> dict[str, Any]:
    builder = InstructionBuilder(settings, kinds)
    counts: Counter[str] = Counter()
    bar = tqdm(
        total=sum(p.report.kept for p in pairs), desc=folder.name, unit="pair", disable=not progress
    )
    mix = recipe.mixing_for(folder.name)
    sizes = {f"{p.src}-{p.tgt}": p.report.kept for p in pairs}
    mix_entry = mixing.summary(mix, sizes)
    uses = mixing.line_repeats(mix, sizes, recipe.seed, folder.name)

    def samples() -> Iterator[Sample]:
        link_sets, stats_sets = _link_sets(recipe, kinds)
        for pair in pairs:
            pair.ensure_stats(stats_sets)
            repeats = uses[f"{pair.src}-{pair.tgt}"]
            for aligned in aligned_pairs(pair, link_sets, pair.stats):
                for repeat in range(1 if repeats is None else repeats[aligned.line - 1]):
                    for sample in builder.samples(aligned, repeat):
                        counts[f"{sample.kind}:{sample.src}-{sample.tgt}"] += 1
                        yield sample
                bar.update(1)

    def batches() -> Iterator[list[tuple[str, str]]]:
        batch: list[tuple[str, str]] = []
        for sample in samples():
            batch.append((sample.prompt, sample.answer))
            if len(batch) == BATCH_SIZE:
                yield batch
                batch = []
        if batch:
            yield batch

    started = time.perf_counter()
    writer = ShardWriter(folder, token_dtype(identity["vocab_size"]), recipe.shard_max_tokens)
    stats = Counter()
    for encoded in encode_stream(batches(), recipe.tokenizer, recipe.max_seq_len, recipe.workers):
        writer.add(encoded)
        stats["samples"] += len(encoded.lengths)
        stats["tokens"] += int(encoded.lengths.sum())
        stats["answer_tokens"] += int((encoded.lengths - encoded.prompt_lengths).sum())
        stats["truncated"] += encoded.truncated
        stats["dropped_prompt_too_long"] += encoded.dropped
    shards = writer.close()
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
        "skipped": dict(sorted(builder.skipped.items())),
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


def _corpus_entry(pair: PairData, work: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {"clean": pair.report.as_dict()}
    files = [pair.src_file, pair.tgt_file]
    alignment_files = sorted((work / "alignments").glob(f"{pair.src}-{pair.tgt}.*"))
    entry["files"] = {str(p.relative_to(work)): sha256_file(p) for p in files + alignment_files}
    if pair.alignment is not None:
        entry["alignment_cache_key"] = pair.alignment.key
    return entry


# The dev split: held-out MTInstruct shards (both directions, for a dev loss) and, when the
# recipe trains AlignInstruct, held-out AlignInstruct samples (to measure whether the
# model learned the discriminator). Dev pairs are word-aligned jointly with the training
# pairs (an aligner on 500 sentences alone is poor), with the same aligner settings; the
# link-consistency statistics come from that joint corpus, and only dev lines become samples.


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
    recipe: Recipe,
    work: Path,
    pairs: list[PairData],
    shared: tuple[Any, dict[str, str], dict[str, Any]],
    cache_dir: Path,
    progress: bool,
) -> dict[str, Any] | None:
    """Write dev/ and return its manifest entry (shaped like a stage's), or None."""
    train_pairs = [p for p in pairs if dev_available(recipe, p.src, p.tgt)]
    if not recipe.dev or not train_pairs:
        return None
    templates, names, identity = shared
    folder = work / "dev"
    dev_recipe = replace(recipe, split="dev", max_pairs=recipe.dev_max_pairs)
    dev_pairs = [_prepare_pair(dev_recipe, p.src, p.tgt, folder) for p in train_pairs]
    settings = replace(_settings(recipe, templates, names, "dev"), both_directions=True)
    entry = _build_stage(dev_recipe, settings, ["mt"], dev_pairs, folder, identity, progress)
    files = [path for p in dev_pairs for path in (p.src_file, p.tgt_file)]
    if any("align" in kinds for kinds in recipe.stages()):
        align_settings = replace(settings, stage="dev-align", ratios={"align": 1.0})
        target = folder / "align.jsonl"
        entry["align"] = _write_dev_align(
            recipe, align_settings, train_pairs, dev_pairs, target, cache_dir / "align"
        )
        entry["align_samples"] = str(target.relative_to(work))
        files.append(target)
    entry["files"] = {str(path.relative_to(work)): sha256_file(path) for path in files}
    return entry


def _joint_pair(
    recipe: Recipe, train: PairData, dev: PairData, scratch: Path, cache: Path
) -> tuple[PairData, int]:
    """Train + dev lines of a pair, aligned together; returns it and the train line count."""
    src, tgt = _read_lines(train.src_file), _read_lines(train.tgt_file)
    n_train = len(src)
    src += _read_lines(dev.src_file)
    tgt += _read_lines(dev.tgt_file)
    name = scratch / f"{dev.src}-{dev.tgt}"
    alignment = align(src, tgt, recipe.align, cache, (dev.src, dev.tgt))
    files = name.with_suffix(".src"), name.with_suffix(".tgt")
    joint = PairData(dev.src, dev.tgt, *files, dev.report, alignment)
    write_lines(joint.src_file, src)
    write_lines(joint.tgt_file, tgt)
    return joint, n_train


def _write_dev_align(
    recipe: Recipe,
    settings: BuildSettings,
    train_pairs: list[PairData],
    dev_pairs: list[PairData],
    target: Path,
    cache: Path,
) -> dict[str, Any]:
    """dev/align.jsonl: {"src", "tgt", "prompt", "answer": "True"|"False"} per line."""
    builder = InstructionBuilder(settings, ["align"])
    link_sets, stats_sets = _link_sets(recipe, ["align"])
    answers: Counter[str] = Counter()
    directions: Counter[str] = Counter()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for train, dev in zip(train_pairs, dev_pairs, strict=True):
            joint, n_train = _joint_pair(recipe, train, dev, Path(scratch), cache)
            joint.ensure_stats(stats_sets)
            for aligned in aligned_pairs(joint, link_sets, joint.stats):
                if aligned.line <= n_train:
                    continue
                for sample in builder.samples(aligned):
                    answer = sample.answer.strip()
                    answers[answer] += 1
                    directions[f"{sample.src}-{sample.tgt}"] += 1
                    row = {"src": sample.src, "tgt": sample.tgt, "prompt": sample.prompt}
                    rows.append(json.dumps({**row, "answer": answer}, ensure_ascii=False))
    write_lines(target, rows)
    return {
        "samples": len(rows),
        "by_answer": dict(sorted(answers.items())),
        "by_direction": dict(sorted(directions.items())),
        "skipped": dict(sorted(builder.skipped.items())),
    }
