"""MFU's denominator: the dense bf16 peak of the card, looked up by its device name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.config import TrainConfig
from training.flops import peak_flops
from training.logs import MetricsLogger, StepCounts

# Names as torch.cuda.get_device_name() prints them.
CARDS = {
    "NVIDIA H100 80GB HBM3": 989,
    "NVIDIA H100 PCIe": 756,
    "NVIDIA H100 NVL": 835,
    "NVIDIA H200": 989,
    "NVIDIA GH200 480GB": 989,
    "NVIDIA A100-SXM4-80GB": 312,
    "NVIDIA A100-SXM4-40GB": 312,
    "NVIDIA A100 80GB PCIe": 312,
    "NVIDIA A100-PCIE-40GB": 312,
    "NVIDIA L40S": 362,
    "NVIDIA L40": 181,
    "NVIDIA L4": 121,
    "NVIDIA A10G": 70,
    "NVIDIA A10": 125,
    "Tesla V100-SXM2-32GB": 125,
    "NVIDIA GeForce RTX 4090": 165,
    "NVIDIA RTX A6000": 155,
    "NVIDIA B200": 2250,
}


@pytest.mark.parametrize("name", sorted(CARDS))
def test_peak_by_device_name(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALIGNINSTRUCT_PEAK_TFLOPS", raising=False)
    assert peak_flops(name) == CARDS[name] * 1e12


def test_unknown_card_has_no_peak_and_an_override_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALIGNINSTRUCT_PEAK_TFLOPS", raising=False)
    assert peak_flops("Tesla T4") is None and peak_flops("NVIDIA GeForce GTX 1080 Ti") is None
    monkeypatch.setenv("ALIGNINSTRUCT_PEAK_TFLOPS", "100")
    assert peak_flops("Tesla T4") == 1e14


def test_rows_carry_mfu_only_with_a_known_peak(tmp_path: Path) -> None:
    config = TrainConfig(data="-", run_dir=str(tmp_path), log_every=1)
    for run, peak in (("cpu", None), ("h100", 989e12)):
        log = MetricsLogger(tmp_path / run, 0, config, 2, (10, 100), None)
        log.peak_per_card = peak  # what card_peak_flops() found on this rank
        log.start_stage("s", 1, 0)
        log.step(1, 1e-4, StepCounts(3.0, 10, 40, 50, flops=2 * 989e12))
        log.close()
        (row,) = [
            json.loads(x) for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        ]
        assert row["tokens_per_s"] > 0
        if peak is None:
            assert "mfu" not in row
        else:  # 2 cards' worth of FLOPs over 2 cards in the interval's seconds
            assert row["mfu"] == pytest.approx(1 / (40 / row["tokens_per_s"]), rel=1e-6)
