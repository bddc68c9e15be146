"""The build manifest (`manifest.json`): what a data-prep output holds.

Written last by `data_prep build` (inside the temporary folder that is renamed into
place), so a folder without one is not a finished build. Training and eval read it to
find stages, the tokenizer's identity and every file's sha256.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
