"""Decode every direction of a grid, then score it.

    python -m eval run --grid freedict corpus.path=runs/demo/corpus/ \
        --model runs/demo/train/export/model --out runs/demo/eval
    torchrun --nproc_per_node 2 -m eval run ...        # each rank decodes its directions
    python -m eval run --grid opus100 corpus.path=/data/opus-100-corpus \
        --model bigscience/bloomz-1b1 --adapter runs/lora/export/adapter --beams 4 --out ...

Output: `hyps/{src}-{tgt}.txt` (one file per direction, written atomically: a file that
exists is finished, and a rerun skips it), `hyps/{src}-{tgt}.meta.json` (what produced
it), and `scores.{json,csv,md}`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from core.dist import init_process_group
from core.fileio import write_json, write_lines
from core.typed_config import ConfigError
from data_prep.contract.templates import Templates
from eval.decode import DecodeConfig, Translator
from eval.directions import Direction, GridConfig, directions, missing_files, names, read_test_set
from eval.scoring import averages, check_lengths, read_lines, score_direction, to_csv, to_markdown


def load_model(model: str, adapter: str | None) -> tuple[Any, Any]:
    """A full model folder or hub name, optionally with a LoRA adapter merged in."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        lm = AutoModelForCausalLM.from_pretrained(model, torch_dtype="auto")
        tokenizer = AutoTokenizer.from_pretrained(adapter or model)
    except OSError as err:
        raise ConfigError("--model", [f"cannot load {adapter or model!r}: {err}"]) from None
    if adapter:
        from peft import PeftModel

        lm = PeftModel.from_pretrained(lm, adapter).merge_and_unload()
    if torch.cuda.is_available():
        lm = lm.to(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return lm.eval(), tokenizer


def meta_for(
    direction: Direction, args: dict[str, Any], templates: Templates, n: int
) -> dict[str, Any]:
    return {
        "direction": direction.name,
        "model": args["model"],
        "adapter": args.get("adapter"),
        "template_version": templates.version,
        "decode": args["decode"],
        "sentences": n,
    }


def decode_direction(
    grid: GridConfig, direction: Direction, translator: Translator, templates: Templates,
    out: Path, args: dict[str, Any], show: bool,
) -> bool:  # fmt: skip
    """Decode one direction unless an identical, finished result exists. True if decoded."""
    sources, _ = read_test_set(grid, direction)
    hyp_path, meta_path = (
        out / "hyps" / f"{direction.name}.txt",
        out / "hyps" / f"{direction.name}.meta.json",
    )
    meta = meta_for(direction, args, templates, len(sources))
    if hyp_path.exists() and meta_path.exists() and json.loads(meta_path.read_text()) == meta:
        return False
    l1, l2 = names(grid, direction)
    prompts = [templates.mt(l1, l2, source)[0] for source in sources]
    with tqdm(total=len(prompts), desc=direction.name, unit="sent", disable=not show) as bar:
        hyps = translator.translate(prompts, progress=bar.update)
    write_json(meta_path, meta)
    write_lines(hyp_path, hyps)  # last: its existence marks the direction finished
    return True


def score_all(
    grid: GridConfig, found: list[Direction], out: Path, comet: str | None
) -> dict[str, Any]:
    """Score every direction's hypotheses; write scores.json, .csv and .md."""
    per_direction: dict[str, dict[str, Any]] = {}
    for direction in found:
        sources, refs = read_test_set(grid, direction)
        hyp_path = out / "hyps" / f"{direction.name}.txt"
        hyps = read_lines(hyp_path)
        check_lengths(hyp_path, hyps, str(direction.files[-1]), refs)
        entry = {"group": direction.group, **score_direction(hyps, refs, direction.tgt)}
        # References (and COMET segment scores) beside the hypotheses: the report's
        # paired significance tests need them.
        write_lines(out / "refs" / f"{direction.name}.txt", refs)
        if comet:
            from eval.comet_score import comet_score

            system, segments = comet_score(comet, sources, hyps, refs)
            entry["comet"] = round(100 * system, 2)
            write_lines(out / "comet" / f"{direction.name}.txt", map(repr, segments))
        per_direction[direction.name] = entry
    avg = averages(per_direction)
    result = {
        "grid": grid.name,
        "directions": per_direction,
        "averages": avg,
        "comet_checkpoint": comet,
    }
    write_json(out / "scores.json", result)
    write_lines(out / "scores.csv", to_csv(per_direction).splitlines())
    write_lines(out / "scores.md", to_markdown(per_direction, avg).splitlines())
    return result


def run(grid: GridConfig, model: str, adapter: str | None, out: Path, decode: DecodeConfig,
        templates: Templates, comet: str | None) -> dict[str, Any] | None:  # fmt: skip
    found = directions(grid)
    missing = missing_files(found)
    if missing:
        listed = "\n".join(f"  - {m}" for m in missing)
        raise ConfigError(grid.name, [f"{len(missing)} test file(s) missing:\n{listed}"])
    rank, world = init_process_group()
    lm, tokenizer = load_model(model, adapter)
    translator = Translator(lm, tokenizer, decode)
    args = {"model": model, "adapter": adapter, "decode": asdict(decode)}
    for direction in found[rank::world]:
        decode_direction(grid, direction, translator, templates, out, args, show=True)
    if world > 1:
        dist.barrier()
    result = score_all(grid, found, out, comet) if rank == 0 else None
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return result
