"""The plain-text kind: each side of each training pair, empty prompt, loss on every token."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from data_prep.build import build
from data_prep.contract.manifest import read_manifest
from data_prep.contract.shards import open_shard
from data_prep.contract.tokenizer import load_tokenizer
from data_prep.recipe import CurriculumError, load_recipe, parse_curriculum
from tests.conftest import freedict_overrides


@pytest.mark.parametrize("directions", ["both", "forward"])
def test_text_samples_are_every_side_with_an_all_ones_mask(
    freedict_corpus: Path, tokenizer_dir: Path, align_cache: Path, tmp_path: Path, directions: str
) -> None:
    overrides = freedict_overrides(
        freedict_corpus,
        tokenizer_dir,
        "curriculum=Text",
        "max_pairs=200",
        f"directions={directions}",
        "dev=false",
    )
    manifest = build(
        load_recipe("freedict", overrides), tmp_path / "t", align_cache, progress=False
    )
    out = tmp_path / "t"
    assert not (out / "alignments").exists()  # plain text needs no word alignment
    (stage,) = manifest["stages"]
    kept = manifest["corpora"]["de-en"]["clean"]["kept"]
    assert stage["name"] == "stage1-text" and kept == 200
    assert stage["by_direction"] == {"text:de-de": kept, "text:en-en": kept}
    assert stage["answer_tokens"] == stage["tokens"]  # no prompt token anywhere
    tokenizer = load_tokenizer(str(tokenizer_dir))
    cleaned = {
        lang: (out / f"corpus/de-en.{lang}").read_text("utf-8").splitlines()
        for lang in ["de", "en"]
    }
    expected = Counter(cleaned["de"] + cleaned["en"])
    tokens, mask = open_shard(out / stage["name"] / stage["shards"][0]["prefix"])
    seen: Counter[str] = Counter()
    for k in range(len(tokens)):
        ids, loss = np.array(tokens[k]), np.array(mask[k])
        assert loss.all() and len(loss) == len(ids)
        assert ids[-1] == tokenizer.eos_token_id
        seen[tokenizer.decode(ids[:-1].tolist())] += 1
    assert seen == expected
    assert "dev" not in read_manifest(out)


def test_text_parses_and_combines() -> None:
    assert parse_curriculum("Text->MT+Align") == [["text"], ["mt", "align"]]
    with pytest.raises(CurriculumError, match="Text"):
        parse_curriculum("Txt")
