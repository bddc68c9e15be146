"""Files shipped inside the packages (recipes, grids, training and DeepSpeed configs).

A name such as `freedict`, `tiny-cpu` or `zero3` finds the shipped file wherever the
package is installed (editable or not), and so does a repository-relative path such as
`training/configs/tiny-cpu.yaml` run from another folder. A path that exists is always
taken as given, so a user's own file wins over a shipped one of the same name.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def shipped_dir(package: str) -> Path:
    """The folder of a package's shipped files (e.g. `training.configs`)."""
    return Path(str(resources.files(package)))


def resolve(path_or_name: str | Path, package: str, suffix: str) -> Path:
    """An existing path as given; else the shipped file of that name (or of that path's
    file name) in `package`; else the path as given, for the caller to report missing."""
    given = Path(path_or_name).expanduser()
    if given.exists():
        return given
    folder = shipped_dir(package)
    for name in (given.name, f"{given.name}{suffix}"):  # names may hold dots (qwen2.5-...)
        if name.endswith(suffix) and (folder / name).is_file():
            return folder / name
    return given


def shipped_names(package: str, suffix: str) -> list[str]:
    """Names of the shipped files of `package` (without the suffix), for error messages."""
    return sorted(p.name.removesuffix(suffix) for p in shipped_dir(package).glob(f"*{suffix}"))
