"""Decode every direction of a grid, then score it.

    python -m eval run --grid freedict corpus.path=runs/demo/corpus/ \
        --model runs/demo/train/export/model --out runs/demo/eval
    torchrun --nproc_per_node 2 -m eval run ...        # each rank decodes and scores its share
    python -m eval run --grid opus100 corpus.path=/data/opus-100-corpus \
        --model bigscience/bloomz-1b1 --adapter runs/lora/export/adapter --beams 4 --out ...

Every input is checked and every test set read before the model is loaded (`prepare`).
Output: `hyps/{src}-{tgt}.txt` (one file per direction, written atomically),
`hyps/{src}-{tgt}.meta.json` (what produced it; a rerun skips a direction only when it
is equal and the file complete, see eval.provenance), `hyps/{src}-{tgt}.limits.json`
(how many hypotheses were cut at their new-token budget), `scores.{json,csv,md}` and
`eval_config.json` (the resolved config and grid).

On several ranks, the directions are shared by cost (sentences x source length, greedy
longest-processing-time; the split is printed), and each rank decodes and scores its own
share, COMET included, on its own device, writing `scores/{src}-{tgt}.json`. Rank 0 then
collects those files (each checked against the hypotheses it scores) into the tables.
No collective follows the long work, so no rank waits on another's decoding or COMET
inside the process group's timeout; a rank that fails ends the launch (torchrun and
the deepspeed launcher stop the other ranks).
"""

from __future__ import annotations

import heapq
import json
import time
from pathlib import Path
from typing import Any

import torch.distributed as dist
from tqdm import tqdm

from core.devices import compute_device
from core.dist import init_process_group
from core.fileio import sha256_file, write_json, write_lines
from core.typed_config import ConfigError
from data_prep.contract.chat import PromptFormat, template_problems
from data_prep.contract.templates import Templates, load_templates
from eval.checks import input_problems, trained_prompt_format
from eval.config import EvalConfig, save_resolved
from eval.coverage import comet_covered
from eval.decode import Translator
from eval.directions import Direction, GridConfig, TestSet, directions, read_test_sets
from eval.offtarget import identifier_record
from eval.provenance import FileHashes, meta_for, producer, reusable
from eval.scoring import (
    averages,
    read_hypotheses,
    score_direction,
    to_csv,
    to_markdown,
    write_alternatives,
)


def prepare(
    config: EvalConfig, grid: GridConfig, decoding: bool
) -> tuple[list[Direction], dict[str, TestSet]]:
    """The grid's directions and test sets, after every input was checked (ConfigError
    listing every problem, or CorpusError naming each unreadable test set)."""
    found = directions(grid)
    problems = input_problems(config, found, decoding)
    if problems:
        raise ConfigError(f"eval {'run' if decoding else 'score'}", problems)
    return found, read_test_sets(found)


def load_model(model: str, adapter: str | None) -> tuple[Any, Any]:
    """A full model folder or hub name, optionally with a LoRA adapter merged in."""
    from transformers import AutoTokenizer

    from core.models import load_causal_lm, merge_adapter

    try:
        lm = load_causal_lm(model)
        tokenizer = AutoTokenizer.from_pretrained(adapter or model)
    except (OSError, ValueError) as err:
        raise ConfigError("model", [f"cannot load {adapter or model!r}: {err}"]) from None
    if adapter:
        lm = merge_adapter(lm, adapter)
    return lm.to(compute_device()).eval(), tokenizer


def prompt_format_checked(config: EvalConfig, tokenizer: Any) -> PromptFormat:
    """The prompt format eval decodes with; its chat template must be the one the model's
    training data was built with (prompt_format.json of the export, when there is one)."""
    try:
        tokens = PromptFormat(tokenizer, config.chat_template)
    except ConfigError as err:
        raise ConfigError("chat_template", err.problems) from None
    if problems := template_problems(trained_prompt_format(config), tokens, "chat_template"):
        raise ConfigError("model", problems)
    return tokens


def load_comet_checked(checkpoint: str) -> None:
    """Load (and cache) the COMET model before decoding, so a bad checkpoint fails first."""
    from eval.comet_score import load_comet

    try:
        load_comet(checkpoint)
    except Exception as err:  # COMET raises bare Exception for its own checks
        raise ConfigError("comet", [f"{checkpoint}: cannot load the COMET model: {err}"]) from None


def direction_prompts(direction: Direction, test_set: TestSet, templates: Templates) -> list[str]:
    """The MTInstruct prompt of each source sentence, as training's samples were built."""
    l1, l2 = direction.src_name, direction.tgt_name
    return [templates.mt(l1, l2, source)[0] for source in test_set.sources]


def decode_direction(
    direction: Direction, test_set: TestSet, translator: Translator, templates: Templates,
    out: Path, meta: dict[str, Any], show: bool,
) -> bool:  # fmt: skip
    """Decode one direction unless an identical, complete result exists. True if decoded."""
    hyp_path = out / "hyps" / f"{direction.name}.txt"
    meta_path = out / "hyps" / f"{direction.name}.meta.json"
    if reusable(hyp_path, meta_path, meta):
        return False
    hyp_path.unlink(missing_ok=True)  # the meta may change first: no stale pair survives a kill
    prompts = direction_prompts(direction, test_set, templates)
    limits = translator.limits(test_set.sources)
    start = time.perf_counter()
    with tqdm(total=len(prompts), desc=direction.name, unit="sent", disable=not show) as bar:
        hyps = translator.translate(prompts, progress=bar.update, limits=limits)
    seconds = time.perf_counter() - start
    hit = sum(translator.hit_limit)
    print(f"{direction.name}: {len(hyps)} sentences in {seconds:.1f} s "
          f"({len(hyps) / max(seconds, 1e-9):.1f} sentences/s), {hit} cut at their "
          "new-token budget", flush=True)  # fmt: skip
    write_json(meta_path, meta)
    write_json(limits_path(out, direction), {"sentences": len(hyps), "hit_limit": hit,
                                             "max_limit": max(limits, default=0)})  # fmt: skip
    write_lines(hyp_path, hyps)  # last: its existence marks the direction finished
    return True


def limits_path(out: Path, direction: Direction) -> Path:
    return out / "hyps" / f"{direction.name}.limits.json"


def hit_limit_share(out: Path, direction: Direction) -> float | None:
    """The share of the direction's hypotheses cut at their new-token budget (None for
    hypotheses decoded before it was recorded)."""
    try:
        record = json.loads(limits_path(out, direction).read_text(encoding="utf-8"))
        return round(record["hit_limit"] / max(record["sentences"], 1), 4)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def score_one(
    config: EvalConfig, direction: Direction, test_set: TestSet, out: Path
) -> dict[str, Any]:
    """Scores of one direction; its references (and COMET segment scores) are written
    beside the hypotheses, for the report's paired significance tests."""
    refs, alts = test_set.references, test_set.alternatives
    ref_name = str(direction.files[-1]) if direction.files else direction.corpus.path
    hyps = read_hypotheses(out / "hyps" / f"{direction.name}.txt", refs, ref_name)
    entry = {"group": direction.group, **score_direction(hyps, refs, direction.tgt, alts)}
    entry["hit_max_new_tokens"] = hit_limit_share(out, direction)
    write_lines(out / "refs" / f"{direction.name}.txt", refs)
    write_alternatives(out / "refs" / f"{direction.name}.alt.txt", alts)
    if config.comet:
        from eval.comet_score import comet_score

        system, segments = comet_score(
            config.comet, test_set.sources, hyps, refs, config.comet_batch_size, compute_device()
        )  # the first reference
        entry["comet"] = round(100 * system, 2)
        entry["comet_covered"] = comet_covered(direction.src, direction.tgt)
        write_lines(out / "comet" / f"{direction.name}.txt", map(repr, segments))
    return entry


def direction_cost(test_set: TestSet) -> int:
    """Decoding and scoring work of a direction: sentences x source length (characters)."""
    return sum(len(source) + 1 for source in test_set.sources)


def split_by_cost(
    found: list[Direction], test_sets: dict[str, TestSet], world: int
) -> list[list[Direction]]:
    """Each rank's directions: most costly first, each to the rank with the least work so
    far (greedy longest-processing-time); each share in grid order."""
    load = [(0, rank) for rank in range(world)]
    shares: list[list[Direction]] = [[] for _ in range(world)]
    costs = {d.name: direction_cost(test_sets[d.name]) for d in found}
    for direction in sorted(found, key=lambda d: -costs[d.name]):  # stable: grid order on ties
        total, rank = heapq.heappop(load)
        shares[rank].append(direction)
        heapq.heappush(load, (total + costs[direction.name], rank))
    order = {d.name: i for i, d in enumerate(found)}
    return [sorted(share, key=lambda d: order[d.name]) for share in shares]


def print_split(shares: list[list[Direction]], test_sets: dict[str, TestSet]) -> None:
    for rank, share in enumerate(shares):
        cost = sum(direction_cost(test_sets[d.name]) for d in share)
        names = ", ".join(d.name for d in share) or "-"
        print(f"rank {rank}: {len(share)} directions, cost {cost:,} "
              f"(sentences x source characters): {names}", flush=True)  # fmt: skip


def part_path(out: Path, direction: Direction) -> Path:
    return out / "scores" / f"{direction.name}.json"


def write_part(config: EvalConfig, direction: Direction, test_set: TestSet, out: Path) -> None:
    """Score one direction of this rank's share into scores/{name}.json, with the hash of
    the hypotheses scored (rank 0 takes it only for those hypotheses)."""
    entry = score_one(config, direction, test_set, out)
    hyps = sha256_file(out / "hyps" / f"{direction.name}.txt")
    write_json(part_path(out, direction), {"hyps_sha256": hyps, "comet_checkpoint": config.comet,
                                           "entry": entry})  # fmt: skip


def read_part(config: EvalConfig, direction: Direction, out: Path) -> dict[str, Any] | None:
    """The direction's scores when another rank has written them for the hypotheses now
    in hyps/ (a file of an earlier run, for other hypotheses, is not taken)."""
    try:
        part = json.loads(part_path(out, direction).read_text(encoding="utf-8"))
        current = sha256_file(out / "hyps" / f"{direction.name}.txt")
    except (OSError, ValueError):
        return None
    fresh = part.get("hyps_sha256") == current and part.get("comet_checkpoint") == config.comet
    return part["entry"] if fresh else None


def collect_parts(
    config: EvalConfig, found: list[Direction], out: Path, poll_s: float = 1.0
) -> dict[str, dict[str, Any]]:
    """Rank 0: every direction's scores, waiting on the filesystem (not in a collective,
    so no group timeout applies) for those the other ranks are still working on."""
    entries: dict[str, dict[str, Any]] = {}
    announced = False
    while len(entries) < len(found):
        for direction in found:
            if direction.name not in entries and (entry := read_part(config, direction, out)):
                entries[direction.name] = entry
        if len(entries) < len(found):
            if not announced:
                waiting = [d.name for d in found if d.name not in entries]
                print(f"waiting for the other ranks' scores: {', '.join(waiting)}", flush=True)
                announced = True
            time.sleep(poll_s)
    return {d.name: entries[d.name] for d in found}


def score_all(
    config: EvalConfig, grid: GridConfig, found: list[Direction], test_sets: dict[str, TestSet]
) -> dict[str, Any]:
    """Score every direction's hypotheses; write scores.json, .csv, .md and the config."""
    out = Path(config.out or ".")
    if config.comet:
        load_comet_checked(config.comet)
    per_direction = {d.name: score_one(config, d, test_sets[d.name], out) for d in found}
    return write_scores(config, grid, per_direction)


def write_scores(
    config: EvalConfig, grid: GridConfig, per_direction: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """scores.json, .csv, .md and the resolved config, from every direction's scores."""
    out = Path(config.out or ".")
    avg = averages(per_direction, config.comet_uncovered_in_averages)
    result = {
        "grid": grid.name,
        "directions": per_direction,
        "averages": avg,
        "comet_checkpoint": config.comet,
        "comet_uncovered_in_averages": config.comet_uncovered_in_averages,
        "off_target_identifier": identifier_record(),
    }
    write_json(out / "scores.json", result)
    write_lines(out / "scores.csv", to_csv(per_direction).splitlines())
    table = to_markdown(per_direction, avg, config.comet_uncovered_in_averages)
    write_lines(out / "scores.md", table.splitlines())
    save_resolved(config, grid)
    return result


def run(
    config: EvalConfig, grid: GridConfig, found: list[Direction], test_sets: dict[str, TestSet]
) -> dict[str, Any] | None:
    """Decode and score this rank's share of the directions; rank 0 then writes the
    tables (see the module doc)."""
    assert config.model is not None  # checked by prepare
    rank, world = init_process_group()
    shares = split_by_cost(found, test_sets, world)
    if rank == 0 and world > 1:
        print_split(shares, test_sets)
    if config.comet:
        load_comet_checked(config.comet)  # every rank scores its own share's COMET
    templates = load_templates(config.templates)
    lm, tokenizer = load_model(config.model, config.adapter)
    tokens = prompt_format_checked(config, tokenizer)
    translator = Translator(lm, tokenizer, config.decode, tokens)
    shared = producer(config.model, config.adapter, lm, templates, config.decode)
    shared["prompt_format"] = tokens.record()
    hashes, out = FileHashes(), Path(config.out or ".")
    for direction in shares[rank]:
        test_set = test_sets[direction.name]
        meta = meta_for(direction, test_set, shared, hashes.of(direction))
        show = rank == 0
        if not decode_direction(direction, test_set, translator, templates, out, meta, show):
            print(f"{direction.name}: finished by an identical run, not decoded again")
    for direction in shares[rank]:
        write_part(config, direction, test_sets[direction.name], out)
    result = None
    if rank == 0:
        result = write_scores(config, grid, collect_parts(config, found, out))
    if world > 1:
        dist.destroy_process_group()  # no barrier: nothing is left to wait for together
    return result
