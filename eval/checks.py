"""Every input of an eval run checked before the first sentence is decoded.

Test files, the model and adapter (a missing folder, or a hub name that is not cached
while offline), the templates, the COMET checkpoint and the output folder: all problems
are collected and raised as one ConfigError, so a wrong path costs seconds, not the
hours of decoding that come before scoring.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from core.hub import model_source_problems
from core.typed_config import ConfigError
from data_prep.contract.chat import PROMPT_FORMAT_NAME, format_problems
from data_prep.contract.templates import load_templates
from eval.comet_score import checkpoint_problems
from eval.config import EvalConfig
from eval.directions import Direction, missing_files


def missing_file_problems(found: list[Direction]) -> list[str]:
    missing = missing_files(found)
    if not missing:
        return []
    listed = "\n".join(f"    {m}" for m in missing)
    return [f"{len(missing)} test file(s) missing:\n{listed}"]


def output_problems(out: str | None, key: str = "out") -> list[str]:
    """The eval folder can be created (or is a folder) and written to."""
    if not out:
        return []  # EvalConfig.problems reports the missing key
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        return [f"{key}: {out} is a file; expected the eval folder (or a path to create it)"]
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return [f"{key}: {existing} is a file, so the folder {out} cannot be created in it"]
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        return [f"{key}: cannot write in {existing} ({err.strerror or err})"]
    hyps = path / "hyps"
    if hyps.exists() and not hyps.is_dir():
        return [f"{key}: {hyps} is a file; expected the hypotheses folder"]
    return []


def hypothesis_problems(found: list[Direction], out: str | None) -> list[str]:
    """For `eval score`: every direction's hypotheses are there."""
    hyps = Path(out or ".") / "hyps"
    missing = [d.name for d in found if not (hyps / f"{d.name}.txt").is_file()]
    if not missing:
        return []
    return [f"{hyps}: no hypotheses for {', '.join(missing)}; run `python -m eval run` first"]


def model_problems(config: EvalConfig) -> list[str]:
    if not config.model:
        return ["model: required (--model NAME or model=NAME)"]
    found = model_source_problems(config.model, "model")
    if config.adapter:
        found += model_source_problems(config.adapter, "adapter", needs="adapter_config.json")
    return found


def template_problems(config: EvalConfig) -> list[str]:
    """The templates load, and are the ones the model was trained with (when its export
    recorded them in prompt_format.json), in the same plain or chat format."""
    try:
        version = load_templates(config.templates).version
    except ConfigError as err:
        return [f"templates: {p}" for p in err.problems]
    try:
        recorded = trained_prompt_format(config)
    except ConfigError as err:
        return err.problems
    if recorded is None:
        return []
    where, found = recorded["file"], []
    if recorded.get("template_version") not in (None, version):
        found.append(
            f"templates: {where}: the model was trained with templates "
            f"{recorded['template_version']}, these are {version}; pass the build's --templates"
        )
    return found + format_problems(recorded, config.chat_template, f"chat_template: {where}")


def trained_prompt_format(config: EvalConfig) -> dict[str, Any] | None:
    """The export's record of its training prompts (prompt_format.json in the adapter or
    model folder, written by training), with "file" naming it; None when there is none."""
    folder = config.adapter or config.model
    path = Path(folder).expanduser() / PROMPT_FORMAT_NAME if folder else None
    if path is None or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError("model", [f"{path}: cannot read the prompt format ({err})"]) from None
    if not isinstance(record, dict):
        raise ConfigError("model", [f"{path}: expected a JSON object"])
    return {**record, "file": str(path)}


def input_problems(config: EvalConfig, found: list[Direction], decoding: bool) -> list[str]:
    """Everything `eval run` (decoding=True) or `eval score` needs, checked at once."""
    problems = missing_file_problems(found)
    if decoding:
        problems += model_problems(config) + template_problems(config)
    if config.comet:
        problems += checkpoint_problems(config.comet)
    problems += output_problems(config.out)
    if not decoding and not problems:
        problems += hypothesis_problems(found, config.out)
    return problems
