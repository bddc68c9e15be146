"""A small byte-level BPE tokenizer trained locally (tests, demo, benchmarks).

Real runs use BLOOM's tokenizer; no hub is reachable here, so the built-in default
trains one with `tokenizers` on the corpus itself and saves it as a Hugging Face
tokenizer folder that `AutoTokenizer.from_pretrained` loads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from data_prep.output import check_output_dir, output_dir

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]
MARKER = "tokenizer.json"


def train_tokenizer(
    files: Iterable[str | os.PathLike[str]], out_dir: str | os.PathLike[str], vocab_size: int = 4000
) -> Path:
    """Train a byte-level BPE on `files` and save it to `out_dir` (atomically); an
    existing tokenizer folder there is replaced, any other non-empty folder is refused."""
    check_output_dir(out_dir, overwrite=True, marker=MARKER)
    paths = [Path(f) for f in files]
    if missing := [str(f) for f in paths if not f.is_file()]:
        raise FileNotFoundError(f"no such file(s) to train the tokenizer on: {', '.join(missing)}")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train([str(f) for f in paths], trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="left",
        model_input_names=["input_ids", "attention_mask"],  # BLOOM takes no token_type_ids
    )
    with output_dir(out_dir, overwrite=True, marker=MARKER) as scratch:
        wrapped.save_pretrained(scratch)
    return Path(out_dir)
