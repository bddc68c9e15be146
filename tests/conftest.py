"""Session fixtures on the real default corpus: FreeDict de-en from Debian's package.

The .deb is fetched once with `apt-get download` into $ALIGNINSTRUCT_CACHE/freedict
(default `.cache/freedict` in the repository) or taken from $FREEDICT_DEB. Alignments
are computed afresh in a per-session cache, so the aligners really run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from data_prep.build import build
from data_prep.freedict import build_corpus, fetch_deb
from data_prep.recipe import load_recipe
from data_prep.tokenizer import train_tokenizer

REPO_ROOT = Path(__file__).resolve().parents[1]
FULL_CURRICULUM = "MT+Align+Hint+Revise->MT"


@pytest.fixture(scope="session")
def freedict_deb() -> Path:
    if path := os.environ.get("FREEDICT_DEB"):
        return Path(path)
    cache = Path(os.environ.get("ALIGNINSTRUCT_CACHE", REPO_ROOT / ".cache"))
    return fetch_deb(cache / "freedict")


@pytest.fixture(scope="session")
def freedict_corpus(freedict_deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/dev/test.{de,en} and lexicon.tsv built from the package."""
    out = tmp_path_factory.mktemp("freedict-corpus")
    build_corpus(freedict_deb, out)
    return out


@pytest.fixture(scope="session")
def tokenizer_dir(freedict_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tokenizer") / "tok"
    return train_tokenizer(
        [freedict_corpus / "train.de", freedict_corpus / "train.en"], out, vocab_size=2000
    )


@pytest.fixture(scope="session")
def align_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def freedict_overrides(corpus: Path, tokenizer: Path, *extra: str) -> list[str]:
    return [f"corpus.path={corpus}/", f"tokenizer={tokenizer}", *extra]


@pytest.fixture(scope="session")
def built(
    freedict_corpus: Path,
    tokenizer_dir: Path,
    align_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """Shards of every instruction type, in a two-stage curriculum."""
    recipe = load_recipe(
        "freedict",
        freedict_overrides(freedict_corpus, tokenizer_dir, f"curriculum={FULL_CURRICULUM}"),
    )
    out = tmp_path_factory.mktemp("built") / "shards"
    build(recipe, out, cache_dir=align_cache, progress=False)
    return out
