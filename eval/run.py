"""Decode every direction of a grid, then score it.

    python -m eval run --grid freedict corpus.path=runs/demo/corpus/ \
        --model runs/demo/train/export/model --out runs/demo/eval
    torchrun --nproc_per_node 2 -m eval run ...        # each rank decodes its directions
    python -m eval run --grid opus100 corpus.path=/data/opus-100-corpus \
        --model bigscience/bloomz-1b1 --adapter runs/lora/export/adapter --beams 4 --out ...

Every input is checked and every test set read before the model is loaded (`prepare`).
Output: `hyps/{src}-{tgt}.txt` (one file per direction, written atomically),
`hyps/{src}-{tgt}.meta.json` (what produced it; a rerun skips a direction only when it
is equal and the file complete, see eval.provenance), `scores.{json,csv,md}` and
`eval_config.json` (the resolved config and grid).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from core.dist import init_process_group
from core.fileio import write_json, write_lines
from core.typed_config import ConfigError
from data_prep.contract.templates import Templates, load_templates
from eval.checks import input_problems
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
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        lm = AutoModelForCausalLM.from_pretrained(model, torch_dtype="auto")
        tokenizer = AutoTokenizer.from_pretrained(adapter or model)
    except (OSError, ValueError) as err:
        raise ConfigError("model", [f"cannot load {adapter or model!r}: {err}"]) from None
    if adapter:
        from peft import PeftModel

        lm = PeftModel.from_pretrained(lm, adapter).merge_and_unload()
    if torch.cuda.is_available():
        lm = lm.to(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return lm.eval(), tokenizer


def load_comet_checked(checkpoint: str) -> None:
    """Load (and cache) the COMET model before decoding, so a bad checkpoint fails first."""
    from eval.comet_score import load_comet

    try:
        load_comet(checkpoint)
    except Exception as err:  # COMET raises bare Exception for its own checks
        raise ConfigError("comet", [f"{checkpoint}: cannot load the COMET model: {err}"]) from None


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
    l1, l2 = direction.src_name, direction.tgt_name
    prompts = [templates.mt(l1, l2, source)[0] for source in test_set.sources]
    start = time.perf_counter()
    with tqdm(total=len(prompts), desc=direction.name, unit="sent", disable=not show) as bar:
        hyps = translator.translate(prompts, progress=bar.update)
    seconds = time.perf_counter() - start
    print(f"{direction.name}: {len(hyps)} sentences in {seconds:.1f} s "
          f"({len(hyps) / max(seconds, 1e-9):.1f} sentences/s)", flush=True)  # fmt: skip
    write_json(meta_path, meta)
    write_lines(hyp_path, hyps)  # last: its existence marks the direction finished
    return True


def score_one(
    config: EvalConfig, direction: Direction, test_set: TestSet, out: Path
) -> dict[str, Any]:
    """Scores of one direction; its references (and COMET segment scores) are written
    beside the hypotheses, for the report's paired significance tests."""
    refs, alts = test_set.references, test_set.alternatives
    ref_name = str(direction.files[-1]) if direction.files else direction.corpus.path
    hyps = read_hypotheses(out / "hyps" / f"{direction.name}.txt", refs, ref_name)
    entry = {"group": direction.group, **score_direction(hyps, refs, direction.tgt, alts)}
    write_lines(out / "refs" / f"{direction.name}.txt", refs)
    write_alternatives(out / "refs" / f"{direction.name}.alt.txt", alts)
    if config.comet:
        from eval.comet_score import comet_score

        system, segments = comet_score(config.comet, test_set.sources, hyps, refs)  # 1st ref
        entry["comet"] = round(100 * system, 2)
        entry["comet_covered"] = comet_covered(direction.src, direction.tgt)
        write_lines(out / "comet" / f"{direction.name}.txt", map(repr, segments))
    return entry


def score_all(
    config: EvalConfig, grid: GridConfig, found: list[Direction], test_sets: dict[str, TestSet]
) -> dict[str, Any]:
    """Score every direction's hypotheses; write scores.json, .csv, .md and the config."""
    out = Path(config.out or ".")
    if config.comet:
        load_comet_checked(config.comet)
    per_direction = {d.name: score_one(config, d, test_sets[d.name], out) for d in found}
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
    """Decode this rank's share of the directions, then (rank 0) score them all."""
    assert config.model is not None  # checked by prepare
    rank, world = init_process_group()
    if rank == 0 and config.comet:
        load_comet_checked(config.comet)
    templates = load_templates(config.templates)
    lm, tokenizer = load_model(config.model, config.adapter)
    translator = Translator(lm, tokenizer, config.decode)
    shared = producer(config.model, config.adapter, lm, templates, config.decode)
    hashes, out = FileHashes(), Path(config.out or ".")
    for direction in found[rank::world]:
        test_set = test_sets[direction.name]
        meta = meta_for(direction, test_set, shared, hashes.of(direction))
        show = rank == 0
        if not decode_direction(direction, test_set, translator, templates, out, meta, show):
            print(f"{direction.name}: finished by an identical run, not decoded again")
    if world > 1:
        dist.barrier()
    result = score_all(config, grid, found, test_sets) if rank == 0 else None
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return result
