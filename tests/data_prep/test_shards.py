"""Tokenization and megatron-core shards: masks, EOS, truncation, dtype, rotation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_prep.contract.shards import open_shard, token_dtype
from data_prep.contract.tokenizer import load_tokenizer
from data_prep.shards import Encoded, ShardWriter, encode_batch, encode_stream

BATCH = [
    ("Translate from German to English.\nGerman: Guten Morgen.\nEnglish:", " Good morning."),
    ('Assertion: "Haus" can be semantically aligned with "house".', " True"),
]


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir: Path):
    return load_tokenizer(str(tokenizer_dir))


def test_mask_covers_answer_and_eos(tokenizer) -> None:
    encoded = encode_batch(tokenizer, BATCH, max_len=512)
    offsets = np.concatenate([[0], np.cumsum(encoded.lengths)])
    for k, (prompt, answer) in enumerate(BATCH):
        ids = encoded.ids[offsets[k] : offsets[k + 1]].tolist()
        n_prompt = int(encoded.prompt_lengths[k])
        assert ids[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(ids[:n_prompt]) == prompt
        assert tokenizer.decode(ids[n_prompt:-1]) == answer
    assert encoded.truncated == encoded.dropped == 0


def test_truncation_cuts_answer_and_drops_long_prompts(tokenizer) -> None:
    n_prompt = len(tokenizer(BATCH[0][0])["input_ids"])
    encoded = encode_batch(tokenizer, [BATCH[0], ("word " * 400, " x")], max_len=n_prompt + 2)
    assert encoded.truncated == 1 and encoded.dropped == 1
    assert encoded.kept.tolist() == [True, False]
    assert encoded.lengths.tolist() == [n_prompt + 2]
    # A cut answer has no EOS: the model must not learn to stop mid-sentence.
    assert encoded.ids[-1] != tokenizer.eos_token_id


def test_dtype_follows_vocabulary() -> None:
    assert token_dtype(4000) is np.uint16
    assert token_dtype(250_880) is np.int32


def test_writer_round_trip_through_megatron_and_rotation(tokenizer, tmp_path: Path) -> None:
    batches = [BATCH * 10, BATCH * 5]
    writer = ShardWriter(tmp_path, np.uint16, max_tokens=200)
    expected = []
    for encoded in encode_stream(batches, tokenizer.name_or_path, 512, workers=2):
        writer.add(encoded)
        offsets = np.concatenate([[0], np.cumsum(encoded.lengths)])
        for k in range(len(encoded.lengths)):
            expected.append(
                (encoded.ids[offsets[k] : offsets[k + 1]], int(encoded.prompt_lengths[k]))
            )
    shards = writer.close()
    assert len(shards) > 1 and all(s.tokens <= 200 for s in shards)
    assert sum(s.sequences for s in shards) == len(expected) == 30
    got = []
    for shard in shards:
        tokens, mask = open_shard(tmp_path / shard.prefix)
        assert len(tokens) == len(mask) == shard.sequences
        assert tokens.document_indices.tolist() == list(range(shard.sequences + 1))
        # Copy: megatron-core closes the mmap when the dataset object goes away.
        got.extend((np.array(tokens[k]), np.array(mask[k])) for k in range(len(tokens)))
    for (ids, n_prompt), (read_ids, read_mask) in zip(expected, got, strict=True):
        assert read_ids.dtype == np.uint16 and read_mask.dtype == np.uint8
        assert read_ids.tolist() == ids.tolist()
        assert read_mask.tolist() == [0] * n_prompt + [1] * (len(ids) - n_prompt)


def test_pool_and_inline_encoding_agree(tokenizer) -> None:
    batches = [BATCH * 3, BATCH]
    inline = list(encode_stream(batches, tokenizer.name_or_path, 512, workers=1))
    pooled = list(encode_stream(batches, tokenizer.name_or_path, 512, workers=2))
    for a, b in zip(inline, pooled, strict=True):
        assert a.ids.tolist() == b.ids.tolist()
        assert a.prompt_lengths.tolist() == b.prompt_lengths.tolist()


def test_writer_rotates_per_sample_across_batches_and_isolates_oversized(tmp_path: Path) -> None:
    # Rule: a sample that would take the shard past max_tokens starts a new shard; one
    # longer than a shard gets a shard of its own. The batch boundary changes nothing.
    lengths, prompts = [3, 4, 10, 2, 2], [1, 1, 2, 0, 1]
    ids = np.arange(sum(lengths), dtype=np.int64)
    ends = np.cumsum(lengths)
    writer = ShardWriter(tmp_path, np.uint16, max_tokens=6)
    for part in (slice(0, 2), slice(2, 5)):  # two batches: [3, 4] and [10, 2, 2]
        start, stop = (ends - lengths)[part][0], ends[part][-1]
        writer.add(Encoded(ids[start:stop], np.array(lengths[part]), np.array(prompts[part])))
    shards = writer.close()
    assert [(s.sequences, s.tokens) for s in shards] == [(1, 3), (1, 4), (1, 10), (2, 4)]
    rows = []
    for shard in shards:
        tokens, mask = open_shard(tmp_path / shard.prefix)
        assert tokens.document_indices.tolist() == list(range(shard.sequences + 1))
        rows.extend((np.array(tokens[k]).tolist(), np.array(mask[k]).tolist()) for k in
                    range(len(tokens)))  # fmt: skip
    for k, (row_ids, row_mask) in enumerate(rows):
        assert row_ids == ids[ends[k] - lengths[k] : ends[k]].tolist()
        assert row_mask == [0] * prompts[k] + [1] * (lengths[k] - prompts[k])
