"""`python -m eval` with a COMET that first sleeps, then scores with the real (tiny)
checkpoint. $SLOW_COMET_S lists the seconds per rank ("0,6": rank 1 sleeps 6 s): a
2-rank eval run whose ranks differ by more than the process group's timeout must still
finish (tests/eval/test_run.py)."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import eval.comet_score as comet_module
from eval.cli import main

real_comet_score = comet_module.comet_score


def slow_comet_score(*args: Any, **kwargs: Any) -> Any:
    seconds = os.environ["SLOW_COMET_S"].split(",")
    time.sleep(float(seconds[int(os.environ.get("RANK", 0))]))
    return real_comet_score(*args, **kwargs)


if __name__ == "__main__":
    comet_module.comet_score = slow_comet_score  # eval.run imports it at each call
    sys.exit(main())
