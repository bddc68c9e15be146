"""A real two-node Slurm cluster on this machine: munged, slurmctld and two slurmd (n1, n2
on 127.0.0.1), with a generated slurm.conf, its own munge key and socket, state and logs
under a temporary folder. Debian's slurm-wlm and munge are installed when missing (CI runs
as root on a fresh machine). A cluster that cannot start fails the tests with the daemons'
log tails; it never skips them. Every daemon started here is stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.conftest import REPO_ROOT
from tests.training.conftest import TINY, run_training

TRAIN_SBATCH = REPO_ROOT / "training" / "slurm" / "train.sbatch"
EVAL_SBATCH = REPO_ROOT / "eval" / "slurm" / "eval.sbatch"
# Short runs of the tiny model: 2 stages of 8 steps, no periodic checkpoint, so a resume
# that does not redo steps proves that the signal itself saved.
SHORT = ("max_steps_per_stage=8", "log_every=1", "save_every=1000")
NODES = ("n1", "n2")
PACKAGES = ("slurm-wlm", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd")
SEARCH_PATH = f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/bin"  # daemons live in sbin


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def install_packages() -> None:
    """apt-get the daemons when any is missing (needs root, as in CI)."""
    if all(shutil.which(name, path=SEARCH_PATH) for name in (*DAEMONS, "sbatch")):
        return
    if os.geteuid() != 0:
        pytest.fail(f"Slurm is not installed and only root can apt-get install {PACKAGES}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *PACKAGES]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr}")


def short_hostname() -> str:
    return socket.gethostname().split(".")[0]


def resolve_node_names() -> None:
    """n1 and n2 must resolve (the batch scripts take the rendezvous host from `scontrol
    show hostnames`), and so must this host (slurmctld's address)."""
    missing = []
    for name in (*NODES, short_hostname()):
        try:
            socket.gethostbyname(name)
        except OSError:
            missing.append(name)
    if missing:
        with open("/etc/hosts", "a", encoding="utf-8") as hosts:
            hosts.write(f"127.0.0.1 {' '.join(missing)}\n")


SLURM_CONF = """\
ClusterName=aligninstruct-test
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge/socket,cred_expire=10
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
MailProg=/bin/true
KillWait=5
MinJobAge=300
SchedulerParameters=sched_interval=2,bf_interval=1
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldDebug=info
SlurmdDebug=info
NodeName=n1 NodeHostname={host} NodeAddr=127.0.0.1 Port={n1_port} CPUs={cpus} State=UNKNOWN
NodeName=n2 NodeHostname={host} NodeAddr=127.0.0.1 Port={n2_port} CPUs={cpus} State=UNKNOWN
PartitionName=test Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
"""


class SlurmCluster:
    """The daemons' processes, and an environment in which sbatch & co. talk to them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []
        for folder in ("munge", "state", "log", "spool/n1", "spool/n2"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        self.conf = root / "slurm.conf"
        self.conf.write_text(
            SLURM_CONF.format(
                host=short_hostname(),
                root=root,
                ctld_port=free_port(),
                n1_port=free_port(),
                n2_port=free_port(),
                cpus=os.cpu_count() or 1,
            )
        )
        venv_bin = str(Path(sys.executable).parent)
        self.env = dict(
            os.environ,
            SLURM_CONF=str(self.conf),
            PATH=f"{venv_bin}:{SEARCH_PATH}",
            PYTHONPATH=str(REPO_ROOT),
            OMP_NUM_THREADS="1",
            PYTHONUNBUFFERED="1",
        )

    def start(self) -> None:
        munge = self.root / "munge"
        key = munge / "munge.key"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}"], env=self.env, check=True)
        key.chmod(0o600)
        self._spawn(
            "munged", "munged", "--foreground", "--force", f"--socket={munge}/socket",
            f"--key-file={key}",
            f"--pid-file={munge}/munged.pid", f"--log-file={munge}/munged.log",
            f"--seed-file={munge}/seed",
        )  # fmt: skip
        self._wait_for(lambda: (munge / "socket").exists(), "munged's socket")
        self._spawn("slurmctld", "slurmctld", "-D", "-f", str(self.conf))
        for node in NODES:
            self._spawn(f"slurmd-{node}", "slurmd", "-D", "-N", node, "-f", str(self.conf))
        self._wait_for(self._nodes_idle, "both nodes idle in sinfo")

    def _spawn(self, name: str, *command: str) -> None:
        log = open(self.root / "log" / f"{name}.log", "wb")  # noqa: SIM115
        self._logs.append(log)
        self.procs.append(
            subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        )

    def _nodes_idle(self) -> bool:
        result = self.run("sinfo", "-h", "-N", "-o", "%N %T", check=False)
        states = dict(line.split() for line in result.stdout.splitlines() if line.strip())
        return all(states.get(node) == "idle" for node in NODES)

    def _wait_for(self, ready: Callable[[], bool], what: str, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while not ready():
            dead = [p.args[0] for p in self.procs if p.poll() is not None]
            if dead or time.time() > deadline:
                self.stop()
                why = f"{', '.join(dead)} exited" if dead else f"no {what} after {timeout} s"
                pytest.fail(f"the Slurm test cluster did not start ({why}):\n{self.log_tails()}")
            time.sleep(0.5)

    def log_tails(self, lines: int = 25) -> str:
        tails = []
        for path in sorted((self.root / "log").iterdir()):
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            tails.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(tails)

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            command, env=self.env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            pytest.fail(f"{' '.join(command)}: {result.stderr}\n{self.log_tails()}")
        return result

    def sbatch(self, *args: str | Path) -> str:
        """Submit; the job id."""
        return self.run("sbatch", "--parsable", *map(str, args)).stdout.strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        """`scontrol show job` as key=value pairs (empty once the job is forgotten)."""
        out = self.run("scontrol", "-o", "show", "job", job_id, check=False).stdout
        return dict(f.split("=", 1) for f in out.split() if "=" in f)

    def wait_done(self, job_id: str, timeout: float = 900) -> dict[str, str]:
        """Wait until the job has ended for good (a requeued job comes back PENDING)."""
        deadline = time.time() + timeout
        while (info := self.job(job_id)).get("JobState") not in (
            "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
        ):  # fmt: skip
            if time.time() > deadline:
                self.run("scancel", job_id, check=False)
                pytest.fail(f"job {job_id} still {info.get('JobState')} after {timeout} s")
            time.sleep(1)
        return info

    def stop(self) -> None:
        """slurmd, slurmctld, then munged (the others need it to say goodbye)."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self._logs:
            log.close()


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    install_packages()
    resolve_node_names()
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def job_logs(folder: Path) -> str:
    """The tails of a run's batch and node logs, for assertion messages."""
    logs = sorted((folder / "logs").glob("job-*.log")) if (folder / "logs").is_dir() else []
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs)


def submit_training(slurm: SlurmCluster, built: Path, run: Path, nodes: int = 2) -> str:
    return slurm.sbatch(
        "--nodes", str(nodes), "--output", run.parent / f"{run.name}-%j.out", TRAIN_SBATCH, TINY,
        f"data={built}", f"run_dir={run}", *SHORT,
    )  # fmt: skip


@pytest.fixture(scope="session")
def reference_run(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same training on one node with 2 ranks under plain torchrun, without Slurm."""
    run = tmp_path_factory.mktemp("reference") / "run"
    result = run_training(f"data={built}", f"run_dir={run}", *SHORT, launcher="torchrun")
    assert result.returncode == 0, result.stderr[-3000:]
    return run


@pytest.fixture(scope="session")
def two_node_run(
    slurm: SlurmCluster, built: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """`sbatch --nodes 2 train.sbatch`: 2 nodes x 1 rank (CPU, gloo); (run folder, job id)."""
    run = tmp_path_factory.mktemp("two-nodes") / "run"
    job = submit_training(slurm, built, run)
    info = slurm.wait_done(job)
    assert info["JobState"] == "COMPLETED", f"{info}\n{job_logs(run)}"
    return run, job
