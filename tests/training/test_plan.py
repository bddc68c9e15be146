"""The memory planner and the shipped BLOOMZ configs: every config validates, full and
LoRA of one size compare on equal terms, and each header's figures are the planner's."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.resources import shipped_names
from tests.conftest import REPO_ROOT
from training.config import CONFIGS_PACKAGE, deepspeed_config, load_train_config
from training.plan import Hardware, Workload, estimate, parse_args, plan, skeleton
from training.presets import PRESET_NAMES, preset_config

CONFIGS = sorted((REPO_ROOT / "training" / "configs").glob("bloomz-*.yaml"))
# Published parameter counts of BLOOM(Z) 560m, 1b1, 3b, 7b1 (tied embeddings counted once).
PUBLISHED = {
    "bloomz-560m": 559_214_592,
    "bloomz-1b1": 1_065_314_304,
    "bloomz-3b": 3_002_557_440,
    "bloomz-7b1": 7_069_016_064,
}
# What may differ between the full and the LoRA config of one size.
MAY_DIFFER = {"run_dir", "finetune", "lora", "lr", "export_merged"}


def test_every_size_and_mode_is_shipped() -> None:
    names = {path.stem for path in CONFIGS}
    for preset in PRESET_NAMES:
        assert {f"{preset}-full", f"{preset}-lora"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_validates(path: Path, tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{}")  # the shards are checked by train.py
    config = load_train_config(path, [f"data={tmp_path}"])
    assert config.precision == "bf16" and config.model.name in PRESET_NAMES
    ds = deepspeed_config(config, world_size=8)
    assert ds["train_batch_size"] == config.micro_batch_size * config.grad_accum_for(8) * 8
    assert ds["zero_optimization"]["stage"] == 3


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_full_and_lora_differ_only_in_lr_and_trainables(preset: str) -> None:
    folder = REPO_ROOT / "training" / "configs"
    full = yaml.safe_load((folder / f"{preset}-full.yaml").read_text())
    lora = yaml.safe_load((folder / f"{preset}-lora.yaml").read_text())
    assert (full["finetune"], lora["finetune"]) == ("full", "lora")
    assert lora["lr"] > full["lr"]
    differing = {k for k in set(full) | set(lora) if full.get(k) != lora.get(k)}
    assert differing <= MAY_DIFFER, differing - MAY_DIFFER


def header_plan(path: Path) -> tuple[list[str], dict[str, float]]:
    """The planner command in a config's header and the figures it quotes."""
    text = path.read_text()
    assert f"deepspeed training/train.py --config training/configs/{path.name}" in text
    command = re.search(r"python -m training\.plan (.+)", text)
    figures = re.search(
        r"-> ([\d.]+) GB per GPU at micro batch (\d+), seq len (\d+) \(\d+% of the [\d.]+ "
        r"usable GB free\); largest micro batch (\d+)",
        text,
    )
    assert command and figures, path
    per_gpu, micro, seq, largest = figures.groups()
    quoted = {"per_rank_gb": float(per_gpu), "micro_batch": int(micro), "seq_len": int(seq),
              "largest_micro_batch": int(largest)}  # fmt: skip
    return command.group(1).split(), quoted


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_header_is_the_planners_output(path: Path) -> None:
    argv, quoted = header_plan(path)
    assert argv[:2] == ["--config", f"training/configs/{path.name}"]
    result = plan(parse_args([*argv[:1], str(path), *argv[2:]]))
    assert result["fits"]
    assert {key: result[key] for key in quoted} == quoted
    planned = re.search(r"Planned for (\d+) node x (\d+) GPUs x (\d+) GB", path.read_text())
    assert planned and argv[2:] == [
        "--nodes", planned.group(1), "--gpus-per-node", planned.group(2),
        "--gpu-memory-gb", planned.group(3),
    ]  # fmt: skip


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_skeleton_counts_match_published_sizes(preset: str, tmp_path: Path) -> None:
    """From the shipped preset and from a local folder holding the same config.json."""
    (tmp_path / "config.json").write_text(json.dumps(preset_config(preset)))
    full = plan(parse_args(["model.name=" + str(tmp_path), "finetune=full"]))
    lora = plan(parse_args(["model.name=" + preset, "finetune=lora"]))
    assert full["total_parameters"] == full["trainable_parameters"] == PUBLISHED[preset]
    assert lora["total_parameters"] == PUBLISHED[preset] + lora["trainable_parameters"]
    cfg = preset_config(preset)  # LoRA rank 8 on query_key_value: 8 x (h + 3h) per layer
    assert lora["trainable_parameters"] == cfg["n_layer"] * 8 * 4 * cfg["hidden_size"]


def test_checkpointing_offload_and_cards_move_the_plan() -> None:
    from training.plan import load_plan_config

    config = load_plan_config(None, ["model.name=bloomz-1b1"])
    shape = skeleton(preset_config("bloomz-1b1"), config)
    work = Workload(micro_batch=8, seq_len=512, bytes_per_value=2, checkpointing=False,
                    offload=False)  # fmt: skip
    eight = Hardware(1, 8, 80.0)
    plain = estimate(shape, eight, work)
    ckpt = estimate(shape, eight, Workload(8, 512, 2, True, False))
    offload = estimate(shape, eight, Workload(8, 512, 2, False, True))
    one = estimate(shape, Hardware(1, 1, 80.0), work)
    assert ckpt.activations_gb < plain.activations_gb / 5 and ckpt.states_gb == plain.states_gb
    assert offload.states_gb < plain.states_gb and offload.host_gb > plain.host_gb
    assert one.states_gb > 3 * plain.states_gb  # 18 bytes per weight on one card, not 8
    assert not estimate(shape, Hardware(1, 8, 16.0), Workload(64, 512, 2, False, False)).fits


def run_plan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training.plan", *args], cwd=REPO_ROOT, capture_output=True,
        text=True, timeout=600, check=False,
    )  # fmt: skip


@pytest.mark.integration
def test_cli_matrix_and_errors(tmp_path: Path) -> None:
    result = run_plan("--matrix")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| bloomz-")]
    assert len(rows) == 4 * 2 * 3 + 4 * 3  # sizes x modes x clusters, + full with offload
    seven_b_one_gpu = next(r for r in rows if r.startswith("| bloomz-7b1 | full | no | 1x1 |"))
    assert seven_b_one_gpu.split("|")[6].strip() == "0"  # 7b1 full needs more than one card
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: /nowhere}\nmicro_batch_size: 0\n")
    result = run_plan("--config", str(bad))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "micro_batch_size" in result.stderr


def test_step_flops_count_blocks_attention_and_answer_head() -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from training.flops import StepFlops
    from training.model import add_lora

    values = preset_config("bloomz-1b1")
    hf_config = AutoConfig.for_model(values.pop("model_type"), **values)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config)
        full = StepFlops.of(model, hf_config)
        lora = StepFlops.of(add_lora(model, 8, 16, 0.0, ["query_key_value"]), hf_config)
    assert full.block_params == PUBLISHED["bloomz-1b1"] - 250_880 * 1536  # no embedding
    assert lora.adapter_params == 24 * 8 * 4 * 1536 and lora.block_params == full.block_params
    rows = [512, 300]
    head = full(rows, 100) - full(rows, 0)
    assert head == 6 * 1536 * 250_880 * 100  # the output layer only at answer positions
    assert full(rows, 0) - full([812], 0) < 0  # attention grows with the row's square
    assert lora(rows, 100) < 0.7 * full(rows, 100)  # no weight gradients for frozen weights


@pytest.mark.integration
@pytest.mark.parametrize("dtype", ["bf16", "fp32"])
def test_output_layer_peak_matches_a_measurement_at_real_width(dtype: str) -> None:
    """The planner's output-layer peak against bench/head_memory.py (forward and backward
    of the answer-only head at 250,880 columns, peak resident memory in a fresh process)."""
    import numpy as np

    from training.plan import Skeleton, answer_logits

    # A parent far larger than the head, as a test suite is by then: Linux carries the
    # parent's peak across fork and exec, so a child's ru_maxrss would report this ballast.
    ballast = np.ones(100_000_000)  # 800 MB, resident
    result = subprocess.run(
        [sys.executable, "bench/head_memory.py", "--answers", "128", "--dtype", dtype],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert ballast.sum() == 100_000_000
    measured = json.loads(result.stdout)["peak_over_before_bytes"]
    shape = Skeleton(0, 0, 0, hidden=64, layers=1, heads=1, vocab=250_880)
    work = Workload(1, 256, 2 if dtype == "bf16" else 4, False, False, answer_share=0.5)
    planned = answer_logits(shape, work)  # 128 answer positions
    assert abs(planned - measured) < 0.05 * measured, (planned, measured)


@pytest.mark.parametrize("name", ["bloomz-1b1-full", "bloomz-3b-full"])
def test_full_configs_keep_a_tenth_of_usable_memory_free(name: str) -> None:
    """As their headers print it (test_header_is_the_planners_output keeps them current)."""
    from training.plan import GPU_RESERVE_GB

    path = REPO_ROOT / "training" / "configs" / f"{name}.yaml"
    argv, quoted = header_plan(path)
    usable = float(argv[argv.index("--gpu-memory-gb") + 1]) - GPU_RESERVE_GB
    assert quoted["per_rank_gb"] <= 0.9 * usable
    free = re.search(r"\((\d+)% of the ([\d.]+) usable GB free\)", path.read_text())
    assert free and int(free.group(1)) >= 10 and float(free.group(2)) == usable


@pytest.mark.parametrize("name", shipped_names(CONFIGS_PACKAGE, ".yaml"), ids=lambda name: name)
def test_planner_loads_every_config_train_py_loads(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By shipped name, before any shards are built (the configs' data folders, relative
    paths, do not exist in an empty working folder, even after `make demo` built them in
    the checkout): the planner's config is train.py's."""
    from training.plan import load_plan_config

    monkeypatch.chdir(tmp_path)
    assert not (Path(load_train_config(name).data) / "manifest.json").exists()
    assert load_plan_config(name, []) == load_train_config(name)


def test_planner_plans_a_shipped_config_by_name() -> None:
    from training.plan import parse_args, plan

    result = plan(parse_args(["--config", "bloomz-1b1-lora"]))
    assert result["fits"] and result["per_rank_gb"] > 0


def test_dev_loss_forward_is_planned_apart_and_must_fit() -> None:
    """The dev forward keeps no activations for a backward: at the training micro batch it
    needs less than a training step; a dev micro batch too large for the card fails the
    plan even when the training step fits."""
    base = ["--config", "bloomz-560m-full", "--gpu-memory-gb", "80"]
    same = plan(parse_args(base))
    assert same["dev_micro_batch"] == same["micro_batch"]
    assert same["fits"] and 0 < same["dev_per_rank_gb"] < same["per_rank_gb"]
    larger = plan(parse_args([*base, f"dev_micro_batch_size={2 * same['micro_batch']}"]))
    assert larger["dev_per_rank_gb"] > same["dev_per_rank_gb"] and larger["fits"]
    huge = plan(parse_args([*base, "dev_micro_batch_size=4096"]))
    assert huge["per_rank_gb"] == same["per_rank_gb"] and not huge["fits"]
