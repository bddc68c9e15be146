"""training/slurm/train.sbatch on a real two-node Slurm: the same losses as one node with
2 ranks, and a job preempted with SIGTERM that saves, requeues itself and resumes exactly."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import torch

from tests.slurm.conftest import SlurmCluster, job_logs, submit_training
from tests.training.conftest import logged_steps, losses

LIVE = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED")


def exported(run: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(run / "export" / "model").state_dict()


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_nodes_match_one_node_with_two_ranks(
    two_node_run: tuple[Path, str], reference_run: Path
) -> None:
    run, job = two_node_run
    assert sorted(losses(run)) == list(range(1, 17))
    assert losses(run) == losses(reference_run)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 16
    assert same_weights(exported(run), exported(reference_run))
    node_logs = [run / "logs" / f"job-{job}-node{n}.log" for n in (0, 1)]
    assert all(log.stat().st_size > 0 for log in node_logs), job_logs(run)
    assert "2 node(s) x 1 rank(s), rendezvous n1:" in (run / "logs" / f"job-{job}.log").read_text()


def wait_for_step(slurm: SlurmCluster, job: str, run: Path, step: int, restarts: int) -> None:
    """Until the job's `restarts`-th launch has logged `step`."""
    deadline = time.time() + 600
    while True:
        info = slurm.job(job)
        assert info.get("JobState") in LIVE, f"{info}\n{job_logs(run)}"
        assert time.time() < deadline, f"step {step} not reached\n{job_logs(run)}"
        launch = info.get("Restarts") == str(restarts) and (run / "metrics.jsonl").exists()
        if launch and max(logged_steps(run), default=0) >= step:
            return
        time.sleep(0.2)


def test_sigterm_saves_requeues_and_resumes_exactly(
    slurm: SlurmCluster, built: Path, reference_run: Path, tmp_path: Path
) -> None:
    """First the preemption signal (SIGTERM to the job steps' processes) mid-stage 1: the
    ranks save and the job requeues itself. Then, in stage 2, `scancel --full`, whose
    SIGTERM also reaches srun, which kills the ranks before they can save: the job
    requeues itself from the last checkpoint (stage 1's end, step 8)."""
    run = tmp_path / "preempted"
    job = submit_training(slurm, built, run)
    wait_for_step(slurm, job, run, 2, restarts=0)
    slurm.run("scancel", "--signal=TERM", job)
    wait_for_step(slurm, job, run, 10, restarts=1)
    slurm.run("scancel", "--signal=TERM", "--full", job)
    info = slurm.wait_done(job)
    assert info["JobState"] == "COMPLETED" and info["Restarts"] == "2", f"{info}\n{job_logs(run)}"
    batch_log = (run / "logs" / f"job-{job}.log").read_text()
    saved_at = json.loads(re.findall(r"preempted after (\{.*?\}):", batch_log)[0])
    assert 2 <= saved_at["global_step"] < 8, "the signal must land mid-stage 1 for this test"
    assert "SIGTERM reached srun, which killed the ranks unsaved" in batch_log
    # Each resume dropped the rows past its checkpoint (the signal's, then step 8's) before
    # logging again: every step once, in order.
    assert logged_steps(run) == list(range(1, 17))
    assert losses(run) == losses(reference_run)
    assert same_weights(exported(run), exported(reference_run))
    assert not (run / "preempted.json").exists()
