"""Peak host memory of the answer-only output layer, forward and backward, on CPU.

    python bench/head_memory.py --answers 256 --hidden 64 --vocab 250880 --dtype bf16

What the planner's `answer_logits` (training/plan.py) predicts: the logits of the answer
positions, as AnswerOnlyLM computes them (linear in the model dtype, `.float()`, summed
cross entropy), then backward. The peak resident set size of this process's memory map
(`VmHWM`) over the resident size just before the forward, after a small warm-up has
loaded the kernels. Not `ru_maxrss`: Linux carries that across fork and exec, so a child
of a large process (a test suite) would report its parent's size. Prints one JSON line
with the bytes per answer x vocab element.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.devices import host_peak_bytes  # noqa: E402


def resident_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize()


def measure(answers: int, hidden: int, vocab: int, dtype: torch.dtype, full: bool) -> dict:
    torch.manual_seed(0)
    weight = (torch.randn(vocab, hidden) * 0.02).to(dtype).requires_grad_(full)
    states = torch.randn(answers, hidden).to(dtype).requires_grad_(True)
    labels = torch.randint(vocab, (answers,))
    warm = F.cross_entropy(F.linear(states[:2], weight[:8]).float(), labels[:2] % 8)
    warm.backward()
    states.grad = weight.grad = None
    before = resident_bytes()
    logits = F.linear(states, weight).float()  # as AnswerOnlyLM: model dtype, then fp32
    loss = F.cross_entropy(logits, labels, reduction="sum")
    del logits
    loss.backward()
    peak = host_peak_bytes()
    return {
        "answers": answers, "hidden": hidden, "vocab": vocab, "dtype": str(dtype),
        "weight_trained": full, "peak_over_before_bytes": peak - before,
        "bytes_per_element": (peak - before) / (answers * vocab),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--answers", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=250_880)
    parser.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--frozen-weight", action="store_true", help="LoRA: no weight grad")
    args = parser.parse_args()
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    print(json.dumps(measure(args.answers, args.hidden, args.vocab, dtype, not args.frozen_weight)))


if __name__ == "__main__":
    main()
