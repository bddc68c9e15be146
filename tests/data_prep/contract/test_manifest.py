"""data_prep.contract.manifest: a build's files are checked against the manifest's sha256s."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.typed_config import ConfigError
from data_prep.contract.manifest import read_manifest, verify_files


def test_intact_build_verifies(built: Path) -> None:
    assert verify_files(built, read_manifest(built)) == []


def test_cut_and_missing_shards_are_named(built: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    manifest = read_manifest(copy)
    stage = manifest["stages"][0]["name"]
    bin_path = copy / stage / "shard-00000.bin"
    bin_path.write_bytes(bin_path.read_bytes()[:-2])  # cut by 2 bytes
    (copy / stage / "shard-00000_mask.idx").unlink()
    problems = verify_files(copy, manifest)
    assert any(str(bin_path) in p and "sha256 differs" in p for p in problems)
    assert any("shard-00000_mask.idx: missing" in p for p in problems)
    # Without hashes only what is missing is found (the quick check).
    assert verify_files(copy, manifest, hashes=False) == [
        p for p in problems if p.endswith("missing (listed in the manifest)")
    ]


def test_unreadable_manifest_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"manifest\.json: cannot read"):
        read_manifest(tmp_path)
