"""What skipping the LM head on prompt positions can save, per model shape: a FLOP count,
not a timing.

    .venv/bin/python bench/head_flops.py [--row-tokens 54.4] [--answer-share 0.289]

train.py runs the output layer (tied to the embedding, V ids wide) only at answer
positions; a peer that computes the model's own loss runs it at every position. With
everything else equal, the ratio of their step FLOPs (training/flops.py's count, full
fine-tuning) is the most that saving can buy. The defaults are the FreeDict dev split's
MT samples (988 rows, 53,740 tokens, 15,508 of them answers), as bench_train.py builds
them; pass your data's figures for another corpus. Shapes: bench_train.py's two models
(4,000-id vocabulary) and the BLOOMZ presets (250,880 ids).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.flops import StepFlops  # noqa: E402
from training.plan import meta_model  # noqa: E402
from training.presets import PRESET_NAMES, preset_config  # noqa: E402

BENCH_SHAPES = {"bench tiny": (64, 2, 4000), "bench ~5.0M": (256, 5, 4000)}


def bloom_flops(hidden: int, layers: int, vocab: int) -> StepFlops:
    """Full fine-tuning FLOPs of a BLOOM shape, counted on its meta-device model."""
    return shape_flops({"model_type": "bloom", "hidden_size": hidden, "n_layer": layers,
                        "n_head": 4, "vocab_size": vocab})  # fmt: skip


def shape_flops(model_config: dict[str, Any]) -> StepFlops:
    model, hf_config = meta_model(model_config)
    return StepFlops.of(model, hf_config)


def head_ratio(flops: StepFlops, row_tokens: float, answer_share: float) -> tuple[float, float]:
    """(head share of the all-positions step, all-positions / answer-only step FLOPs)."""
    rows = [round(row_tokens)] * 1000
    tokens = sum(rows)
    answer_only = flops(rows, round(tokens * answer_share))
    everywhere = flops(rows, tokens)
    head = 6 * flops.hidden * flops.vocab * tokens
    return head / everywhere, everywhere / answer_only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--row-tokens", type=float, default=53740 / 988, help="mean row length")
    parser.add_argument("--answer-share", type=float, default=15508 / 53740)
    args = parser.parse_args()
    flops = {name: bloom_flops(*shape) for name, shape in BENCH_SHAPES.items()}
    flops |= {name: shape_flops(preset_config(name)) for name in PRESET_NAMES}
    print(f"rows of {args.row_tokens:.1f} tokens, {args.answer_share:.1%} of them answers")
    print(f"{'shape':<14} {'hidden':>6} {'layers':>6} {'vocab':>7}  head share  bound")
    for name, counted in flops.items():
        share, ratio = head_ratio(counted, args.row_tokens, args.answer_share)
        print(f"{name:<14} {counted.hidden:>6} {counted.layers:>6} {counted.vocab:>7}  "
              f"{share:10.1%}  {ratio:5.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
