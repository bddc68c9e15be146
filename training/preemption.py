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

Two other ways a run is stopped on purpose save the same way but are not requeued:
Ctrl-C (SIGINT, which the terminal sends to every rank) says it stopped because of the
interrupt and exits with status 130; and a launcher that dies (`deepspeed` or `torchrun`
killed on its own, which leaves its ranks running) is noticed at the next step: the
ranks save and exit with status 1 instead of training on with nobody to collect them.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import torch
import torch.distributed as dist

from core.devices import collective_device
from core.dist import finish
from core.fileio import write_json

PREEMPTED_EXIT = 124  # "saved, please requeue": train.sbatch turns it into `scontrol requeue`
INTERRUPTED_EXIT = 130  # the shell's status for a Ctrl-C: stopped on purpose, not requeued
LAUNCHER_GONE_EXIT = 1
MARKER = "preempted.json"
SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)
LAUNCHERS = ("deepspeed", "torchrun", "torch.distributed.run", "torch.distributed.launch")
LAUNCHER_CHECK_S = 1.0  # how often a step looks for its launcher (a /proc read)


def launcher_processes() -> list[Any]:
    """This rank's launcher processes: the chain of ancestors that are `deepspeed` (its
    runner and per-node launcher) or `torchrun`; empty when started otherwise."""
    import psutil

    found = []
    try:
        for parent in psutil.Process().parents():
            if not any(name in " ".join(parent.cmdline()) for name in LAUNCHERS):
                break
            found.append(parent)
    except psutil.Error:  # an ancestor of another user, or one that just ended
        pass
    return found


class Preemption:
    """Installs the handlers when created; `agreed()` is a collective: call it on every
    rank at the same step."""

    def __init__(self, run_dir: Path) -> None:
        self.signal: int | None = None
        self.launcher_gone: int | None = None  # pid of a launcher that died
        self._launchers = launcher_processes()
        self._checked = 0.0
        self.marker = run_dir / MARKER
        self.marker.unlink(missing_ok=True)  # from an earlier launch that was preempted
        for sig in SIGNALS:
            signal.signal(sig, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.signal = self.signal or signum  # nothing else is safe inside a handler

    def _check_launcher(self) -> None:
        """Note a launcher that died (psutil compares start times: no reused pid)."""
        now = time.monotonic()
        if self.launcher_gone or now - self._checked < LAUNCHER_CHECK_S:
            return
        self._checked = now
        self.launcher_gone = next((p.pid for p in self._launchers if not p.is_running()), None)

    def agreed(self) -> bool:
        """True on every rank when any rank has been signalled or lost its launcher."""
        self._check_launcher()
        stop = self.signal is not None or self.launcher_gone is not None
        flag = torch.tensor([int(stop)], device=collective_device())
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def leave(self, rank: int, global_step: int, writer: Any = None) -> NoReturn:
        """After the checkpoint: record the request for the batch script and exit."""
        if writer is not None:
            writer.flush()  # TensorBoard flushes on a timer; os._exit would drop the tail
        status, message = self._outcome(global_step)
        if rank == 0:
            if status == PREEMPTED_EXIT:
                write_json(self.marker, {"global_step": global_step, "exit": PREEMPTED_EXIT})
            # A progress bar may hold the line: the message starts a line of its own.
            print(f"\n{message}", file=sys.stderr, flush=True)
        finish(status)

    def _outcome(self, global_step: int) -> tuple[int, str]:
        """The exit status and what rank 0 says, from what this rank heard."""
        if self.signal == signal.SIGINT:
            return INTERRUPTED_EXIT, (
                f"interrupted (SIGINT, Ctrl-C): checkpoint saved at step {global_step}; "
                "stopped. Run the same command again to resume from it"
            )
        if self.launcher_gone and not self.signal:
            return LAUNCHER_GONE_EXIT, (
                f"the launcher (pid {self.launcher_gone}) is gone: checkpoint saved at step "
                f"{global_step}; stopped. Run the same command again to resume from it"
            )
        heard = signal.Signals(self.signal).name if self.signal else "another rank's"
        return PREEMPTED_EXIT, (
            f"preempted ({heard} signal): checkpoint saved at step {global_step}, "
            f"exiting with status {PREEMPTED_EXIT} so that the job is requeued"
        )
