"""Up-front checks of a run's inputs, before any rank starts: the shard files against the
manifest's sha256s, the model source, the tokenizer the shards were built with, and the
dev split that `eval_every` asks for. Each returns problems naming the file or key."""

from __future__ import annotations

from typing import Any

from core.hub import model_source_problems
from data_prep.contract.manifest import verify_files
from data_prep.contract.tokenizer import load_tokenizer, tokenizer_identity
from training.config import TrainConfig


def input_problems(config: TrainConfig, manifest: dict[str, Any]) -> list[str]:
    """Every problem with the shards, the model source and the dev split, at once."""
    problems = verify_files(config.data, manifest, hashes=True)
    if not config.model.tiny:
        source = model_source_problems(config.model.resolved(), "model.name")
        problems += source or tokenizer_problems(config, manifest)  # loads it when it can
    if config.eval_every is not None and not manifest.get("dev"):
        problems.append(
            f"eval_every: {config.data} has no dev split (no 'dev' in its manifest); build it "
            "from a corpus with a dev split, or leave eval_every unset"
        )
    return problems


def tokenizer_problems(config: TrainConfig, manifest: dict[str, Any]) -> list[str]:
    """Shards built with another tokenizer than the model's (the model source is valid)."""
    if config.model.tiny:  # the tiny model is built with the data's own tokenizer
        return []
    data_tok = manifest["tokenizer"]
    source = config.model.resolved()
    if tokenizer_identity(load_tokenizer(source))["fingerprint"] == data_tok["fingerprint"]:
        return []
    return [
        f"data: the shards in {config.data} were built with tokenizer "
        f"{data_tok['name_or_path']!r} (fingerprint {data_tok['fingerprint']}), not the "
        f"tokenizer of {source!r}; rebuild the shards with tokenizer=<the model>"
    ]


def inputs_source(config: TrainConfig, problems: list[str]) -> str:
    """The header of the input problems: what they are about (the model for `model.name`
    problems, the shard folder for the rest), not always the shard folder."""
    about_model = [p.startswith("model.name") for p in problems]
    sources = []
    if any(about_model):
        sources.append(f"model {config.model.resolved()!r}")
    if not all(about_model):
        sources.append(config.data)
    return " and ".join(sources)
