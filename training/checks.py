"""Up-front checks of a run's inputs, before any rank starts: the shard files against the
manifest's sha256s, the model source, the tokenizer the shards were built with, LoRA's
target modules against the model's module names, and the dev split that `eval_every`
asks for. Each returns problems naming the file or key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.families import family_named, family_of, tiny_config
from core.hub import model_source_problems
from data_prep.contract.manifest import verify_files
from data_prep.contract.tokenizer import load_tokenizer, tokenizer_identity
from training.config import TrainConfig


def shards_problems(config: TrainConfig) -> list[str]:
    """The data folder must be a finished data-prep output. Checked with the inputs, not
    when the config loads, so that a config loads (the planner's) before any build."""
    if (Path(config.data) / "manifest.json").is_file():
        return []
    return [f"data: {config.data!r} has no manifest.json (run python -m data_prep build)"]


def input_problems(config: TrainConfig, manifest: dict[str, Any]) -> list[str]:
    """Every problem with the shards, the model source and the dev split, at once."""
    problems = verify_files(config.data, manifest, hashes=True)
    source = (
        [] if config.model.tiny else model_source_problems(config.model.resolved(), "model.name")
    )
    problems += source or tokenizer_problems(config, manifest)  # loads it when it can
    problems += [] if source else lora_target_problems(config)
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


def model_config_for(config: TrainConfig) -> dict[str, Any] | None:
    """config.json of the model a run trains: the tiny family's, a preset's, a local
    folder's or a cached hub model's (None when it cannot be read offline)."""
    from training.presets import model_config_dict

    if config.model.tiny:
        m = config.model
        family = family_named(m.tiny_family)
        return tiny_config(family, 256, m.tiny_hidden, m.tiny_layers, m.tiny_heads, {})
    try:
        return model_config_dict(config.model.resolved())
    except FileNotFoundError:
        pass
    try:  # a hub name: its config.json from the local cache
        from transformers import AutoConfig

        hf = AutoConfig.from_pretrained(
            config.model.resolved(), trust_remote_code=config.model.trust_remote_code
        )
        return hf.to_dict()
    except (OSError, ValueError):
        return None


def linear_names(model: Any) -> list[str]:
    """The distinct last names of the layers LoRA can adapt (linear, GPT-2's Conv1D)."""
    from torch import nn

    names = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if name and (isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D")
    }
    return sorted(names)


def lora_target_problems(config: TrainConfig) -> list[str]:
    """LoRA target modules that name no module of the model (peft would fail on every rank
    after the launch), checked on the model built on the meta device."""
    if config.finetune != "lora" or not config.lora.target_modules:
        return []  # the family's default targets exist by construction (tests/training)
    values = model_config_for(config)
    if values is None:
        return []  # no config to check against offline; peft checks at load
    from training.plan import meta_model

    model, hf_config = meta_model(values)
    keys = [name for name, _ in model.named_modules() if name]
    missing = [
        target
        for target in config.lora.target_modules
        if not any(key == target or key.endswith(f".{target}") for key in keys)
    ]
    if not missing:
        return []
    family = family_of(hf_config)
    what = f"the tiny {family.name} model" if config.model.tiny else config.model.resolved()
    return [
        f"lora.target_modules: {', '.join(map(repr, missing))} "
        f"{'is' if len(missing) == 1 else 'are'} not a module of {what} "
        f"(model_type {hf_config.model_type!r}, family {family.name}); its linear layers: "
        f"{', '.join(linear_names(model))}; leave target_modules empty for the family's "
        f"default ({', '.join(family.lora_targets)})"
    ]
