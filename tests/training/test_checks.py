"""LoRA target modules checked against the model's module names before any rank starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import transformers.modeling_utils  # noqa: F401  (its first import runs lscpu: not in a unit test)

from training.checks import lora_target_problems
from training.config import TrainConfig, load_train_config


def config(tmp_path: Path, *overrides: str) -> TrainConfig:
    (tmp_path / "manifest.json").write_text("{}")
    return load_train_config(
        "tiny-cpu", [f"data={tmp_path}", "run_dir=runs/x", "finetune=lora", *overrides]
    )


@pytest.mark.parametrize("family", ["bloom", "llama", "qwen2", "gemma2"])
def test_default_targets_need_no_check_and_exist(family: str, tmp_path: Path) -> None:
    from core.families import family_named

    targets = ",".join(family_named(family).lora_targets)
    for given in ("[]", f"[{targets}]"):
        chosen = config(tmp_path, f"model.tiny_family={family}", f"lora.target_modules={given}")
        assert lora_target_problems(chosen) == []


def test_bloom_targets_on_a_llama_name_the_modules_that_exist(tmp_path: Path) -> None:
    chosen = config(
        tmp_path, "model.tiny_family=llama", "lora.target_modules=[query_key_value, v_proj]"
    )
    [problem] = lora_target_problems(chosen)
    assert problem.startswith("lora.target_modules: 'query_key_value' is not a module of")
    assert "family llama" in problem and "q_proj, up_proj, v_proj" in problem
    assert "v_proj'" not in problem  # the one that exists is not reported


def test_preset_checked_from_its_offline_config(tmp_path: Path) -> None:
    chosen = config(
        tmp_path, "model.tiny=false", "model.name=bloomz-560m", "lora.target_modules=[q_proj]"
    )
    [problem] = lora_target_problems(chosen)
    assert "bigscience/bloomz-560m" in problem and "query_key_value" in problem


def test_unknown_tiny_family_is_a_config_error(tmp_path: Path) -> None:
    from core.typed_config import ConfigError

    with pytest.raises(ConfigError, match=r"model.tiny_family: 'gpt9' is not one of bloom, llama"):
        config(tmp_path, "model.tiny_family=gpt9")
