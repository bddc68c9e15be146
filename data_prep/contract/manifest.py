"""The build manifest (`manifest.json`): what a data-prep output holds.

Written last by `data_prep build` (inside the temporary folder that is renamed into
place), so a folder without one is not a finished build. Training and eval read it to
find stages, the tokenizer's identity and every file's sha256.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.fileio import sha256_file
from core.typed_config import ConfigError


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The parsed manifest of a data-prep output folder; a `ConfigError` naming the file
    when it is missing or unreadable."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise ConfigError(
            "data", [f"{path}: no manifest; is {folder} a finished data-prep output?"]
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError("data", [f"{path}: cannot read the data-prep manifest ({err})"]) from None


def manifest_entries(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Every shard-folder entry of a manifest: the stages, then `dev` when built."""
    return [*manifest.get("stages", []), *([manifest["dev"]] if manifest.get("dev") else [])]


def verify_files(folder: str | Path, manifest: dict[str, Any], hashes: bool = True) -> list[str]:
    """Problems with the shard files a manifest lists: missing, or (with
    `hashes`) wrong sha256. Each problem names the file; an empty list means intact."""
    problems = []
    for entry in manifest_entries(manifest):
        for shard in entry.get("shards", []):
            for name, digest in shard.get("files", {}).items():
                path = Path(folder) / entry["name"] / name
                if not path.is_file():
                    problems.append(f"{path}: missing (listed in the manifest)")
                elif hashes and sha256_file(path) != digest:
                    problems.append(
                        f"{path}: sha256 differs from the manifest's (cut, edited or replaced "
                        "after the build); rebuild the shards"
                    )
    return problems
