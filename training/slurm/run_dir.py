"""Print the run folder of a training config (`train.sbatch` keeps its logs there).

    python training/slurm/run_dir.py CONFIG [key=value ...]

The config is checked as train.py checks it; a mistake exits with status 2 and the
message, before anything is queued on the nodes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.typed_config import ConfigError
from training.config import load_train_config


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        config = load_train_config(argv[0], argv[1:])
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(Path(config.run_dir).resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
