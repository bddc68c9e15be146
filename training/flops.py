"""FLOPs a training step needs, from the model's config (for MFU).

Per real token of a row of length s, with N the weights of the blocks (all parameters
but the embedding, which is a lookup), L layers, hidden size h:
    full:  6 N + 12 L h s           (forward 2N, backward 4N; attention scores and context)
    LoRA:  4 N + 6 N_lora + 12 L h s (frozen weights need the input gradient only)
and per answer token, the output layer (V ids wide, run only at answer positions): 6 h V
for full fine-tuning, 4 h V for LoRA. An output layer tied to the embedding (BLOOM, Qwen2.5
up to 3B, Gemma) is counted there once; an untied one (Llama 3.1 8B, Mistral, Qwen2.5 7B)
holds weights of its own, which are taken out of N as well.
MFU divides by the peak of the card the run is on (`peak_flops`, a table by device name).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from torch import nn

from core.families import family_of


@dataclass(frozen=True)
class StepFlops:
    hidden: int
    layers: int
    vocab: int
    block_params: int  # base-model weights outside the embedding (frozen under LoRA)
    adapter_params: int  # LoRA weights (0 for full fine-tuning)

    @classmethod
    def of(cls, model: nn.Module, hf_config: Any) -> StepFlops:
        """From a (peft-wrapped) model; ZeRO-3 partitions report their full size."""
        text = hf_config.get_text_config()
        sizes = {n: getattr(p, "ds_numel", p.numel()) for n, p in model.named_parameters()}
        adapter = sum(v for n, v in sizes.items() if "lora_" in n)
        tied = getattr(text, "tie_word_embeddings", family_of(text).tied_embeddings)
        # The embedding, and an untied output layer (counted per answer token below).
        embedding = text.vocab_size * text.hidden_size * (1 if tied else 2)
        return cls(
            hidden=text.hidden_size,
            layers=text.num_hidden_layers,
            vocab=text.vocab_size,
            block_params=sum(sizes.values()) - adapter - embedding,
            adapter_params=adapter,
        )

    def __call__(self, row_lengths: list[int], answer_tokens: int) -> float:
        lora = self.adapter_params > 0
        per_token = (4 if lora else 6) * self.block_params + 6 * self.adapter_params
        attention = sum(12 * self.layers * self.hidden * n * n for n in row_lengths)
        head = (4 if lora else 6) * self.hidden * self.vocab * answer_tokens
        return float(per_token * sum(row_lengths) + attention + head)


# Dense (no sparsity) bf16 tensor-core peak per card in TFLOP/s, from the vendors' data
# sheets, matched against `torch.cuda.get_device_name()` in this order (the first pattern
# that matches wins, so the specific forms come first). V100 has no bf16 tensor cores:
# its fp16 peak is given. A card not listed gets no MFU (tokens/s only).
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    (r"GB200", 2500.0),
    (r"B200", 2250.0),
    (r"B100", 1750.0),
    (r"H100.*PCIe", 756.0),
    (r"H100 NVL|H200 NVL", 835.0),
    (r"GH200|H200|H100|H800", 989.0),  # SXM (HBM3/HBM3e)
    (r"A100|A800", 312.0),  # SXM and PCIe, 40 and 80 GB
    (r"L40S", 362.0),
    (r"\bL40\b", 181.0),
    (r"\bL4\b", 121.0),
    (r"A10G", 70.0),  # AWS's A10 variant: no NVIDIA sheet, the commonly cited figure
    (r"\bA10\b", 125.0),
    (r"RTX 6000 Ada", 364.0),
    (r"RTX A6000", 155.0),
    (r"RTX 4090", 165.0),  # GeForce: fp32 accumulation, as PyTorch's bf16 matmuls use
    (r"RTX 3090", 71.0),
    (r"V100", 125.0),
    (r"MI300X", 1307.0),
    (r"MI250X?\b", 383.0),
)


def peak_flops(device_name: str) -> float | None:
    """The card's dense bf16 peak in FLOP/s, or None for a card not in the table.
    ALIGNINSTRUCT_PEAK_TFLOPS (per card) overrides the table."""
    override = os.environ.get("ALIGNINSTRUCT_PEAK_TFLOPS")
    if override:
        return float(override) * 1e12
    for pattern, tflops in PEAK_BF16_TFLOPS:
        if re.search(pattern, device_name):
            return tflops * 1e12
    return None
