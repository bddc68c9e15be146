"""The same script under MPI and as two "nodes" of a hostfile on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.training.conftest import DEEPSPEED, TINY, TRAIN, free_port, train_env

SHORT = ("max_steps_per_stage=3", "log_every=1")


def finished_with_two_ranks(run: Path) -> None:
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 6
    assert json.loads((run / "deepspeed.json").read_text())["train_batch_size"] == 32
    assert (run / "export" / "model" / "model.safetensors").exists()


def test_mpirun_two_ranks(built: Path, tmp_path: Path) -> None:
    mpiexec = str(Path(sys.executable).with_name("mpiexec"))
    run = tmp_path / "mpi"
    command = [mpiexec, "-n", "2", sys.executable, TRAIN, "--config", TINY, f"data={built}"]
    result = subprocess.run(
        [*command, f"run_dir={run}", *SHORT], cwd=REPO_ROOT, env=train_env(),
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    finished_with_two_ranks(run)


def test_hostfile_two_nodes_on_loopback(built: Path, tmp_path: Path) -> None:
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("node0 slots=1\nnode1 slots=1\n")
    run, port = tmp_path / "nodes", str(free_port())

    def node(rank: int) -> subprocess.Popen[str]:
        command = [
            DEEPSPEED, "--hostfile", str(hostfile), "--no_ssh", "--node_rank", str(rank),
            "--master_addr", "127.0.0.1", "--master_port", port, TRAIN, "--config", TINY,
            f"data={built}", f"run_dir={run}", *SHORT,
        ]  # fmt: skip
        return subprocess.Popen(
            command, cwd=REPO_ROOT, env=train_env(), stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    nodes = [node(0), node(1)]
    for node in nodes:
        _, stderr = node.communicate(timeout=600)
        assert node.returncode == 0, stderr[-3000:]
    finished_with_two_ranks(run)
