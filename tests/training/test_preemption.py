"""training/preemption.py without Slurm: one rank of a real 2-rank DeepSpeed run gets
SIGUSR1, every rank saves at the same step, the launch exits with PREEMPTED_EXIT, and
`resume: auto` continues with exactly the losses of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

from tests.conftest import REPO_ROOT
from tests.training.conftest import (
    launch_command,
    logged_steps,
    losses,
    run_training,
    train_env,
)
from training.preemption import MARKER, PREEMPTED_EXIT


def rank_process(launcher: subprocess.Popen[str], local_rank: int) -> psutil.Process:
    """The train.py process of one rank (the DeepSpeed launcher passes --local_rank=N)."""
    for child in psutil.Process(launcher.pid).children(recursive=True):
        if f"--local_rank={local_rank}" in child.cmdline():
            return child
    raise AssertionError(f"no rank with --local_rank={local_rank} under the launcher")


def test_one_rank_signalled_saves_exits_for_requeue_and_resumes_exactly(
    built: Path, tmp_path: Path
) -> None:
    common = (
        f"data={built}", "max_steps_per_stage=8", "save_every=1000", "log_every=1",
        "finetune=lora", "lora.dropout=0.1",
    )  # fmt: skip
    straight = tmp_path / "straight"
    assert run_training(*common, f"run_dir={straight}").returncode == 0
    run = tmp_path / "preempted"
    with open(tmp_path / "preempted.log", "w") as log:
        launcher = subprocess.Popen(
            launch_command(*common, f"run_dir={run}"), cwd=REPO_ROOT, env=train_env(),
            stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.time() + 300
            while not ((run / "metrics.jsonl").exists() and max(losses(run), default=0) >= 2):
                assert launcher.poll() is None and time.time() < deadline, "ended before signal"
                time.sleep(0.05)
            os.kill(rank_process(launcher, 1).pid, signal.SIGUSR1)  # rank 1 only
            status = launcher.wait(timeout=300)
        finally:
            if launcher.poll() is None:
                os.killpg(launcher.pid, signal.SIGKILL)
    output = (tmp_path / "preempted.log").read_text()
    assert status == PREEMPTED_EXIT, output[-3000:]
    saved_at = json.loads((run / MARKER).read_text())["global_step"]
    assert 2 <= saved_at < 8 and logged_steps(run) == list(range(1, saved_at + 1))
    assert "preempted (another rank's signal)" in output  # rank 0 heard it from rank 1
    resumed = run_training(*common, f"run_dir={run}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert logged_steps(run) == list(range(1, 17))  # resumed after the signal's checkpoint
    assert losses(run) == losses(straight)
    assert not (run / MARKER).exists()


def launch_logged(args: tuple[str, ...], log_path: Path) -> subprocess.Popen[str]:
    with open(log_path, "w") as log:
        return subprocess.Popen(
            launch_command(*args), cwd=REPO_ROOT, env=train_env(), stdout=log,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip


def wait_for_step(launcher: subprocess.Popen[str], run: Path, step: int) -> None:
    deadline = time.time() + 300
    while not ((run / "metrics.jsonl").exists() and max(losses(run), default=0) >= step):
        assert launcher.poll() is None and time.time() < deadline, "ended before the signal"
        time.sleep(0.05)


def long_run(built: Path, tmp_path: Path) -> tuple[Path, subprocess.Popen[str]]:
    """A 400-step run, its output logged to tmp_path/log: (run_dir, launcher)."""
    run = tmp_path / "run"
    args = (f"data={built}", f"run_dir={run}", "max_steps_per_stage=400", "save_every=1000",
            "log_every=1")  # fmt: skip
    return run, launch_logged(args, tmp_path / "log")


def test_ctrl_c_saves_and_says_it_was_interrupted(built: Path, tmp_path: Path) -> None:
    run, launcher = long_run(built, tmp_path)
    try:
        wait_for_step(launcher, run, 2)
        ranks = [rank_process(launcher, 0), rank_process(launcher, 1)]
        os.killpg(launcher.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        launcher.wait(timeout=300)
        _, alive = psutil.wait_procs(ranks, timeout=300)  # the launcher may exit first
        assert not alive
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    output = (tmp_path / "log").read_text()
    assert "\ninterrupted (SIGINT, Ctrl-C): checkpoint saved at step " in output, output[-3000:]
    # (the `deepspeed` runner itself prints a KeyboardInterrupt traceback; no rank does)
    assert "requeued" not in output and 'train.py", line' not in output, output[-3000:]
    assert not (run / MARKER).exists()  # nothing for a batch script to requeue
    step = int(output.split("checkpoint saved at step ")[1].split(";")[0])
    assert (run / "checkpoints" / f"step{step:08d}").is_dir() and step < 400


def test_ranks_stop_and_save_when_the_launcher_dies(built: Path, tmp_path: Path) -> None:
    run, launcher = long_run(built, tmp_path)
    try:
        wait_for_step(launcher, run, 2)
        ranks = [rank_process(launcher, 0), rank_process(launcher, 1)]
        launcher.kill()  # the `deepspeed` command alone; its per-node launcher stays
        launcher.wait()
        _, alive = psutil.wait_procs(ranks, timeout=120)
        assert not alive, "the ranks trained on after their launcher died"
    finally:
        os.killpg(launcher.pid, signal.SIGKILL)
    output = (tmp_path / "log").read_text()
    assert "the launcher (pid " in output and "is gone: checkpoint saved at step" in output
    step = int(output.split("checkpoint saved at step ")[1].split(";")[0])
    assert (run / "checkpoints" / f"step{step:08d}").is_dir() and step < 400
