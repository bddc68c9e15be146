"""Session fixtures on the real default corpus: FreeDict de-en from Debian's package.

The .deb is fetched once with `apt-get download` into $ALIGNINSTRUCT_CACHE/freedict
(default `.cache/freedict` in the repository) or taken from $FREEDICT_DEB. Alignments
are computed afresh in a per-session cache, so the aligners really run.
"""

from __future__ import annotations

import multiprocessing.process
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy.testing  # noqa: F401  (its import runs `lscpu` once: before the unit guard)
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


# Fixtures that fetch the corpus (apt-get), align it or build shards: integration only.
# read_only_dir and small_disk mount a tmpfs (tests/data_prep/conftest.py).
INTEGRATION_FIXTURES = {
    "freedict_deb",
    "freedict_corpus",
    "tokenizer_dir",
    "built",
    "read_only_dir",
    "small_disk",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test is `integration` when marked so or when it uses an integration fixture,
    else `unit`."""
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("integration") is None and uses & INTEGRATION_FIXTURES:
            item.add_marker(pytest.mark.integration)
        if item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.unit)


def _refuse(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a unit test started {what}; mark it integration")

    return refuse


@pytest.fixture(autouse=True)
def unit_tier_stays_in_process(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unit tests really start no subprocess, no worker process and open no network
    connection: a test that does fails here and must be marked integration."""
    if request.node.get_closest_marker("unit") is None:
        return
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("a subprocess"))
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", _refuse("a process"))
    real_connect = socket.socket.connect

    def local_only(sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not host.startswith(("127.", "::1", "localhost", "/")):
            raise AssertionError(f"a unit test connected to {host}; mark it integration")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", local_only)


def mount_tmpfs(folder: Path, options: str) -> bool:
    if os.geteuid() != 0:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    command = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may write in: a read-only tmpfs as root, else mode 0555."""
    folder = tmp_path / "ro"
    if mount_tmpfs(folder, "ro,size=1m"):
        yield folder
        subprocess.run(["umount", str(folder)], check=True)
        return
    folder.mkdir(exist_ok=True)
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        pytest.skip("cannot make a read-only folder here (root without mount)")
    yield folder
    folder.chmod(0o755)
