"""The GPU check's CPU side: the carried-wheel list, and the model and shards it builds
(here with a small hidden size; the vocabulary keeps BLOOM's width)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.gpu_check import (
    SEQ_LEN,
    WHEELS,
    download_command,
    missing_wheels,
    prepare,
    strip_wheels,
    train_rows,
)
from training.data import load_stages


def test_wheel_list_names_what_is_missing(tmp_path: Path) -> None:
    assert len(missing_wheels(tmp_path)) == len(WHEELS)
    for name, version in WHEELS.items():
        if name != "deepspeed":
            (tmp_path / f"{name}-{version}-cp312-cp312-manylinux_2_28_x86_64.whl").touch()
    (tmp_path / "deepspeed-0.1.0-py3-none-any.whl").touch()  # the wrong version
    assert missing_wheels(tmp_path) == [f"deepspeed=={WHEELS['deepspeed']}"]


@pytest.mark.integration
def test_prepare_builds_a_real_width_model_and_long_rows(tmp_path: Path) -> None:
    corpus, shards, model = prepare(tmp_path, ["n_layer=2", "hidden_size=64", "n_head=4"])
    config = json.loads((model / "config.json").read_text())
    assert (config["vocab_size"], config["n_layer"], config["hidden_size"]) == (250_880, 2, 64)
    manifest = json.loads((shards / "manifest.json").read_text())
    assert manifest["tokenizer"]["vocab_size"] == 250_880
    lengths = load_stages(shards)[0].lengths
    assert max(lengths) <= SEQ_LEN and sum(n > SEQ_LEN // 2 for n in lengths) > len(lengths) / 4
    assert len((corpus / "test.de").read_text().splitlines()) == 256


def test_wheel_download_is_for_cp312_manylinux_and_builds_deepspeed(tmp_path: Path) -> None:
    """The dry run of the preparation: what pip is asked for (no network in tests)."""
    download, build = download_command(tmp_path / "whl")
    assert download[1:4] == ["-m", "pip", "download"]
    for flag in ("--no-deps", "--only-binary=:all:", "manylinux2014_x86_64", str(tmp_path / "whl")):
        assert flag in download
    assert download[download.index("--python-version") + 1] == "3.12"
    assert download[download.index("--implementation") + 1] == "cp"
    asked = {item for item in download if "==" in item}
    expected = {f"{n.replace('_', '-')}=={v}" for n, v in WHEELS.items() if n != "deepspeed"}
    assert asked == expected
    assert build[1:4] == ["-m", "pip", "wheel"] and build[-1] == f"deepspeed=={WHEELS['deepspeed']}"


def test_rerun_in_the_venv_drops_only_the_wheel_folder() -> None:
    argv = ["--wheels", ".whl", "--out", "o", "--wheels=x", "--steps", "5", "n_layer=2"]
    assert strip_wheels(argv) == ["--out", "o", "--steps", "5", "n_layer=2"]


def test_metrics_rows_with_dev_loss_rows_among_them(tmp_path: Path) -> None:
    rows = [
        {"step": 5, "loss": 9.0, "tokens_per_s": 1.0, "peak_memory_mb": 1.0},
        {"step": 5, "dev_loss": 8.0, "dev_tokens": 10},
        {"step": 10, "loss": 8.5, "tokens_per_s": 3.0, "peak_memory_mb": 2.0, "mfu": 0.4},
        {"step": 10, "dev_loss": 7.9, "dev_tokens": 10},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert train_rows(tmp_path) == [rows[2]]  # the warm-up row and dev rows left out
