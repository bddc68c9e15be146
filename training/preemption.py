"""Preemption: a scheduler's warning becomes a checkpoint and a requeue, not lost work.

Schedulers signal a job before killing it: Slurm sends SIGTERM on preemption and
`scancel`, and the signal asked for with `--signal` before the time limit
(training/slurm/train.sbatch asks for SIGUSR1). The handlers only set a flag. At each
optimizer-step boundary the ranks agree through the process group (one rank hearing the
signal is enough), every rank saves the ordinary checkpoint, and the launch ends with
status PREEMPTED_EXIT; `resume: auto` then continues from that checkpoint exactly.

Launchers replace a failed rank's status by their own (torchrun always reports 1, the
DeepSpeed launcher reports 1 when it was signalled itself), so rank 0 also writes
`preempted.json` into the run folder: that file is what the batch script reads.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import torch
import torch.distributed as dist

from core.devices import collective_device
from core.dist import finish
from core.fileio import write_json

PREEMPTED_EXIT = 124  # "saved, please requeue": train.sbatch turns it into `scontrol requeue`
MARKER = "preempted.json"
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preemption:
    """Installs the handlers when created; `agreed()` is a collective: call it on every
    rank at the same step."""

    def __init__(self, run_dir: Path) -> None:
        self.signal: int | None = None
        self.marker = run_dir / MARKER
        self.marker.unlink(missing_ok=True)  # from an earlier launch that was preempted
        for sig in SIGNALS:
            signal.signal(sig, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.signal = self.signal or signum  # nothing else is safe inside a handler

    def agreed(self) -> bool:
        """True on every rank when any rank has been signalled."""
        flag = torch.tensor([0 if self.signal is None else 1], device=collective_device())
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def leave(self, rank: int, global_step: int, writer: Any = None) -> NoReturn:
        """After the checkpoint: record the request for the batch script and exit."""
        if writer is not None:
            writer.flush()  # TensorBoard flushes on a timer; os._exit would drop the tail
        if rank == 0:
            heard = signal.Signals(self.signal).name if self.signal else "another rank's"
            write_json(self.marker, {"global_step": global_step, "exit": PREEMPTED_EXIT})
            print(
                f"preempted ({heard} signal): checkpoint saved at step {global_step}, "
                f"exiting with status {PREEMPTED_EXIT} so that the job is requeued",
                file=sys.stderr,
                flush=True,
            )
        finish(PREEMPTED_EXIT)
