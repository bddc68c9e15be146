"""eval/slurm/eval.sbatch on a real two-node Slurm: the nodes share the FreeDict grid's
directions and write the same hypotheses and scores as one process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.slurm.conftest import EVAL_SBATCH, SlurmCluster, job_logs


def test_two_nodes_decode_the_grid_like_one_process(
    slurm: SlurmCluster, two_node_run: tuple[Path, str], freedict_corpus: Path, tmp_path: Path
) -> None:
    model = two_node_run[0] / "export" / "model"
    args = [
        "--grid", "freedict", f"corpus.path={freedict_corpus}/", "max_sentences=24",
        "--model", str(model), "--max-new-tokens", "16",
    ]  # fmt: skip
    nodes, single = tmp_path / "nodes", tmp_path / "single"
    job = slurm.sbatch("--nodes", "2", "--output", tmp_path / "eval-%j.out", EVAL_SBATCH,
                       *args, "--out", nodes)  # fmt: skip
    info = slurm.wait_done(job)
    assert info["JobState"] == "COMPLETED", f"{info}\n{job_logs(nodes)}"
    alone = subprocess.run(
        [sys.executable, "-m", "eval", "run", *args, "--out", str(single)], cwd=REPO_ROOT,
        env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, check=False,
        timeout=600,
    )  # fmt: skip
    assert alone.returncode == 0, alone.stderr[-3000:]
    for name in ("de-en", "en-de"):
        hyps = (nodes / "hyps" / f"{name}.txt").read_bytes()
        assert hyps == (single / "hyps" / f"{name}.txt").read_bytes()
        assert len(hyps.decode().splitlines()) == 24
    scores = [json.loads((out / "scores.json").read_text()) for out in (nodes, single)]
    assert scores[0]["directions"] == scores[1]["directions"]
    # Each node decoded one direction (its "NAME: N sentences in" line is in that node's
    # log; rank 0's log also names both in the split and in the score warnings).
    node_logs = [(nodes / "logs" / f"job-{job}-node{n}.log").read_text() for n in (0, 1)]
    decoded = [
        {name for name in ("de-en", "en-de") if re.search(rf"{name}: \d+ sentences in", log)}
        for log in node_logs
    ]
    assert decoded == [{"de-en"}, {"en-de"}], job_logs(nodes)
