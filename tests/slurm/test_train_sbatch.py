"""training/slurm/train.sbatch on a real two-node Slurm: the same losses as one node with
2 ranks, and a job preempted with SIGTERM that saves, requeues itself and resumes exactly."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from tests.slurm.conftest import SlurmCluster, job_logs, submit_training
from tests.training.conftest import losses


def exported(run: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(run / "export" / "model").state_dict()


def logged_steps(run: Path) -> list[int]:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["step"] for line in lines]


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


def test_sigterm_saves_requeues_and_resumes_exactly(
    slurm: SlurmCluster, built: Path, reference_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "preempted"
    job = submit_training(slurm, built, run)
    deadline = time.time() + 600
    while not ((run / "metrics.jsonl").exists() and max(losses(run), default=0) >= 2):
        state = slurm.job(job).get("JobState")
        assert state in ("PENDING", "RUNNING") and time.time() < deadline, job_logs(run)
        time.sleep(0.2)
    slurm.run("scancel", "--signal=TERM", "--full", job)
    info = slurm.wait_done(job)
    assert info["JobState"] == "COMPLETED" and info["Restarts"] == "1", f"{info}\n{job_logs(run)}"
    batch_log = (run / "logs" / f"job-{job}.log").read_text()
    saved_at = json.loads(batch_log.split("preempted after ", 1)[1].split(":\n", 1)[0])
    assert 2 <= saved_at["global_step"] < 8, "the signal must land mid-stage for this test"
    # No step was trained twice: the resume started from the signal's checkpoint.
    assert logged_steps(run) == list(range(1, 17)), job_logs(run)
    assert losses(run) == losses(reference_run)
    assert same_weights(exported(run), exported(reference_run))
    assert not (run / "preempted.json").exists()
