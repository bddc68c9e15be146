"""`python -m eval` with a COMET that first sleeps $SLOW_COMET_S seconds, then scores
with the real (tiny) checkpoint: a 2-rank eval run under a process group timeout shorter
than that sleep must still finish (tests/eval/test_run.py)."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import eval.comet_score as comet_module
from eval.cli import main

real_comet_score = comet_module.comet_score


def slow_comet_score(*args: Any, **kwargs: Any) -> Any:
    time.sleep(float(os.environ["SLOW_COMET_S"]))
    return real_comet_score(*args, **kwargs)


if __name__ == "__main__":
    comet_module.comet_score = slow_comet_score  # eval.run imports it at each call
    sys.exit(main())
