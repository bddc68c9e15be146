"""The GPU check's CPU side: the carried-wheel list, and the model and shards it builds
(here with a small hidden size; the vocabulary keeps BLOOM's width)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.gpu_check import SEQ_LEN, WHEELS, missing_wheels, prepare
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
