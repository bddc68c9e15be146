"""Typed eval config: YAML + `key=value` overrides, validated before the first sentence.

    python -m eval run --config eval.yaml model=runs/full/export/model decode.num_beams=4
    python -m eval run --grid freedict corpus.path=runs/demo/corpus/ \
        --model runs/demo/mt/export/model --out runs/demo/mt/eval --max-new-tokens 64
    python -m eval align --config eval.yaml align.data=shards/mt-align align.batch_size=16

The command-line flags are aliases of config keys (`--model` is `model=`, `--beams` is
`decode.num_beams=`, `--max-new-tokens` is `decode.max_new_tokens=`, the cap of each
sentence's budget min(cap, ceil(decode.length_ratio x source tokens) +
decode.length_slack); for `eval align`, `--data` is `align.data=`, `--batch-size`
`align.batch_size=`, ...) and win over the YAML. Overrides of the grid named by `grid`
may be mixed in: a key that is a grid field (`corpus.path=`, `max_sentences=`,
`pairs=[de-en]`, `language_names.kha=Khasi`), or any key spelled `grid.KEY=`. Every
problem of both is listed at once (ConfigError).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.fileio import write_json
from core.typed_config import ConfigError, load_config, to_dict
from eval.decode import DecodeConfig
from eval.directions import GridConfig, grid_path, load_grid

RESOLVED_NAME = "eval_config.json"

# argparse destination -> config key
FLAG_KEYS = {
    "grid": "grid",
    "model": "model",
    "adapter": "adapter",
    "out": "out",
    "templates": "templates",
    "chat_template": "chat_template",
    "comet": "comet",
    "batch_size": "decode.batch_size",
    "beams": "decode.num_beams",
    "max_new_tokens": "decode.max_new_tokens",
    # eval align
    "data": "align.data",
    "align_batch_size": "align.batch_size",
    "max_samples": "align.max_samples",
}


@dataclass(frozen=True)
class AlignEvalConfig:
    """`eval align`: AlignInstruct accuracy on a build's held-out samples."""

    data: str | None = None
    """The data-prep build folder whose dev/align.jsonl is scored; required by `eval align`."""
    batch_size: int = 32
    """Samples scored per forward pass."""
    max_samples: int | None = None
    """Score only the first N samples; none: all."""

    def problems(self, key: str) -> list[str]:
        found = [] if self.batch_size >= 1 else [f"{key}.batch_size: must be >= 1"]
        if self.max_samples is not None and self.max_samples < 1:
            found.append(f"{key}.max_samples: must be >= 1 (or null for all)")
        return found


@dataclass(frozen=True)
class EvalConfig:
    """What `eval run`, `eval score` and `eval align` evaluate, with what, and where the
    results go; each field's meaning is below it (`python -m core.typed_config --list
    eval.config:EvalConfig` lists them)."""

    grid: str = "freedict"
    """A grid YAML or a shipped grid name (freedict, opus100): the directions to score."""
    model: str | None = None
    """A model folder or hub name; with `adapter`, the base model."""
    adapter: str | None = None
    """A LoRA adapter folder, merged into `model` before decoding."""
    out: str | None = None
    """The eval folder (hyps/, refs/, scores, this config, align.json); required."""
    templates: str | None = None
    """Template overrides (YAML), as used for the training data; none: the defaults."""
    chat_template: bool = False
    """Wrap prompts in the tokenizer's chat template, as data prep's `chat_template: true`
    did for the training data (a model's prompt_format.json says which it was trained on)."""
    comet: str | None = None
    """A COMET checkpoint (.ckpt) to score with, on this rank's GPU when there is one;
    none: no COMET."""
    comet_batch_size: int = 32
    """Segments COMET scores per forward pass."""
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    align: AlignEvalConfig = field(default_factory=AlignEvalConfig)
    comet_uncovered_in_averages: bool = False
    """Also average COMET over directions with a language outside its encoder's
    pre-training languages (eval.coverage; docs/evaluation-metrics.md); flagged either way."""

    def problems(self, key: str) -> list[str]:
        d, found = self.decode, []
        # A field of the wrong type is reported by typed_config; the rest still counts.
        for name in ("batch_size", "num_beams", "max_new_tokens"):
            value = getattr(d, name)
            if isinstance(value, int) and value < 1:
                found.append(f"decode.{name}: must be >= 1")
        if isinstance(d.length_ratio, (int, float)) and d.length_ratio <= 0:
            found.append("decode.length_ratio: must be > 0 (or null: every sentence gets the cap)")
        if isinstance(d.length_slack, int) and d.length_slack < 0:
            found.append("decode.length_slack: must be >= 0")
        if isinstance(self.comet_batch_size, int) and self.comet_batch_size < 1:
            found.append("comet_batch_size: must be >= 1")
        if isinstance(d.refill_fraction, float) and not 0 < d.refill_fraction <= 1:
            found.append("decode.refill_fraction: must be in (0, 1]")
        if not self.out:
            found.append("out: required (--out FOLDER or out=FOLDER)")
        return found


def flag_overrides(args: argparse.Namespace) -> list[str]:
    """`key=value` items for the flags given on the command line (values quoted, so a
    path such as `yes` or `1e3` stays a string)."""
    items = []
    for dest, key in FLAG_KEYS.items():
        value = getattr(args, dest, None)
        if value is not None:
            items.append(f"{key}={json.dumps(value)}")
    return items


def split_overrides(overrides: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(eval overrides, grid overrides, problems) by each item's first key."""
    eval_keys = {f.name for f in dataclasses.fields(EvalConfig)}
    grid_keys = {f.name for f in dataclasses.fields(GridConfig)}
    mine: list[str] = []
    grid: list[str] = []
    problems: list[str] = []
    for item in overrides:
        head = item.partition("=")[0].strip().split(".")[0]
        if item.startswith("grid."):
            grid.append(item[len("grid.") :])
        elif head in eval_keys:
            mine.append(item)
        elif head in grid_keys:
            grid.append(item)
        else:
            known = ", ".join(sorted(eval_keys | grid_keys))
            problems.append(f"{head}: unknown key (eval or grid keys: {known})")
    return mine, grid, problems


def load_eval_config(
    path: str | Path | None, overrides: list[str] | None = None
) -> tuple[EvalConfig, GridConfig]:
    """The eval config and its grid, with every problem of both in one ConfigError."""
    mine, grid_items, problems = split_overrides(overrides or [])
    config: EvalConfig | None = None
    grid: GridConfig | None = None
    try:
        config = load_config(EvalConfig, path, mine)
    except ConfigError as err:
        problems += err.problems
    if config is not None:
        try:
            grid = load_grid(config.grid, grid_items)
        except ConfigError as err:
            problems += [f"grid {grid_path(config.grid)}: {p}" for p in err.problems]
    if problems or config is None or grid is None:
        raise ConfigError(str(path) if path else "eval config", problems)
    return config, grid


def save_resolved(config: EvalConfig, grid: GridConfig) -> Path:
    """The resolved config and grid, beside the scores."""
    path = Path(config.out or ".") / RESOLVED_NAME
    data: dict[str, Any] = {
        "eval": to_dict(config),
        "grid_file": str(grid_path(config.grid).resolve()),
        "grid": to_dict(grid),
    }
    write_json(path, data)
    return path
