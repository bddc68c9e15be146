"""`python -m data_prep inspect DIR`: the manifest, and decoded samples with the loss span
marked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from data_prep.contract.manifest import read_manifest, verify_files
from data_prep.contract.shards import open_shard
from data_prep.contract.tokenizer import load_tokenizer

ANSWER_OPEN, ANSWER_CLOSE = "⟦", "⟧"


class InspectError(ValueError):
    pass


def decode_sample(tokenizer: Any, ids: np.ndarray, mask: np.ndarray) -> str:
    """Prompt as text, then the loss-bearing tokens between ⟦ ⟧."""
    answer_start = int(np.argmax(mask)) if mask.any() else len(ids)
    prompt = tokenizer.decode(ids[:answer_start].tolist())
    answer = tokenizer.decode(ids[answer_start:].tolist())
    return f"{prompt}{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"


def summary(manifest: dict[str, Any]) -> str:
    tok = manifest["tokenizer"]
    lines = [
        f"recipe {manifest['recipe']}  curriculum {manifest['curriculum']}  "
        f"seed {manifest['seed']}",
        f"tokenizer {tok['name_or_path']} ({tok['class']}, vocab {tok['vocab_size']}, "
        f"fingerprint {tok['fingerprint']})  templates {manifest['template_version']}",
    ]
    for pair, entry in manifest["corpora"].items():
        clean = entry["clean"]
        dropped = {k: v for k, v in clean["dropped"].items() if v}
        lines.append(f"corpus {pair}: kept {clean['kept']} of {clean['seen']}  dropped {dropped}")
    for stage in manifest["stages"]:
        lines.append(
            f"{stage['name']}: {stage['samples']} samples, {stage['tokens']} tokens "
            f"({stage['answer_tokens']} in answers), truncated {stage['truncated']}, "
            f"{len(stage['shards'])} shard(s)"
        )
        lines.append(f"  by kind {stage['by_kind']}  skipped {stage['skipped']}")
        lines.append(f"  by direction {stage['by_direction']}")
    return "\n".join(lines)


def inspect(folder: str | Path, samples: int = 3, tokenizer_path: str | None = None) -> str:
    """Summary of the manifest plus the first `samples` decoded samples of every stage;
    an `InspectError` naming each shard file that is missing or whose sha256 differs."""
    manifest = read_manifest(folder)
    if problems := verify_files(folder, manifest):
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise InspectError(f"{folder}: {len(problems)} shard file(s) not as built:\n{listed}")
    tokenizer = load_tokenizer(tokenizer_path or manifest["tokenizer"]["name_or_path"])
    out = [summary(manifest)]
    for stage in manifest["stages"]:
        shard = stage["shards"][0]["prefix"] if stage["shards"] else None
        if shard is None:
            continue
        tokens, mask = open_shard(Path(folder) / stage["name"] / shard)
        for index in range(min(samples, len(tokens))):
            out.append(f"--- {stage['name']} / {shard} #{index}")
            out.append(decode_sample(tokenizer, tokens[index], mask[index]))
    return "\n".join(out)
