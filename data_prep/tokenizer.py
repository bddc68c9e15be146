"""A small byte-level BPE tokenizer trained locally (tests, demo, benchmarks).

Real runs use BLOOM's tokenizer; no hub is reachable here, so the built-in default
trains one with `tokenizers` on the corpus itself and saves it as a Hugging Face
tokenizer folder that `AutoTokenizer.from_pretrained` loads.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from data_prep.output import check_output_dir, output_dir

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]
MARKER = "tokenizer.json"


class TokenizerError(ValueError):
    """The text cannot give the tokenizer asked for (the message says what to change)."""


def _vocabulary_reached(reached: int, asked: int, files: list[Path], allow_smaller: bool) -> None:
    """BPE stops merging when the text has no pair left to merge: too little text gives a
    smaller vocabulary than asked, which is an error unless the user accepts it."""
    if reached >= asked:
        return
    what = (
        f"the text of {', '.join(map(str, files))} gives a vocabulary of {reached:,} entries, "
        f"not the {asked:,} asked for (--vocab-size)"
    )
    if not allow_smaller:
        raise TokenizerError(
            f"{what}; train on more text, ask for a smaller --vocab-size, or pass "
            f"--allow-smaller-vocab to keep {reached:,} entries"
        )
    print(f"warning: {what}; keeping {reached:,} (--allow-smaller-vocab)", file=sys.stderr)


def _save(wrapped: object, out_dir: str | os.PathLike[str]) -> None:
    """Save atomically; the Rust writer of tokenizer.json reports a full disk as a plain
    Exception ("... (os error 28)"): made an ENOSPC OSError, which output_dir turns into
    its one-line message."""
    with output_dir(out_dir, overwrite=True, marker=MARKER) as scratch:
        try:
            wrapped.save_pretrained(scratch)  # type: ignore[attr-defined]
        except OSError:
            raise
        except Exception as err:  # tokenizers' Rust errors carry the OS error in the text
            if f"os error {errno.ENOSPC}" not in str(err):
                raise
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(scratch)) from None


def train_tokenizer(
    files: Iterable[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    vocab_size: int = 4000,
    allow_smaller: bool = False,
) -> Path:
    """Train a byte-level BPE on `files` and save it to `out_dir` (atomically); an
    existing tokenizer folder there is replaced, any other non-empty folder is refused.
    Text too small for `vocab_size` is a TokenizerError unless `allow_smaller`."""
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
    _vocabulary_reached(tokenizer.get_vocab_size(), vocab_size, paths, allow_smaller)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="left",
        model_input_names=["input_ids", "attention_mask"],  # BLOOM takes no token_type_ids
    )
    _save(wrapped, out_dir)
    return Path(out_dir)
