"""A non-editable install works from any folder: the packages, their shipped recipes,
grids and configs, and the CLIs, with nothing of the source tree on the path.

The wheel is built from this checkout and installed into a fresh venv whose only other
content is a path to this environment's site-packages (for the dependencies; the editable
install's import hook there is not activated, since `.pth` files are read only in site
folders). Commands then run from an empty folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, freedict_overrides
from tests.training.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh venv with the wheel of this checkout installed."""
    root = tmp_path_factory.mktemp("install")
    wheels, venv = root / "wheels", root / "venv"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, REPO_ROOT],
        check=True, cwd=root, capture_output=True,
    )  # fmt: skip
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(wheels.glob("aligninstruct-*.whl"))
    subprocess.run(
        [*pip, "--python", python, "install", "-q", "--no-deps", "--ignore-installed", wheel],
        check=True, capture_output=True,
    )  # fmt: skip
    return python


def run(python: Path, cwd: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [str(python), *args], cwd=cwd, env=dict(env, OMP_NUM_THREADS="1"),
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def test_packages_come_from_the_install(installed: Path, tmp_path: Path) -> None:
    code = "import core, data_prep.contract, eval, training, ds_configs; print(training.__file__)"
    result = run(installed, tmp_path, "-c", code)
    assert result.returncode == 0, result.stderr
    location = Path(result.stdout.strip())
    assert location.is_relative_to(installed.parents[1]), location
    assert not location.is_relative_to(REPO_ROOT)


def test_shipped_configs_by_name(installed: Path, built: Path, tmp_path: Path) -> None:
    code = (
        "from training.config import load_train_config as t; from eval.directions import "
        "load_grid as g; from data_prep.recipe import load_recipe as r\n"
        f"d = ['data={built}']; print(t('tiny-cpu', d).deepspeed_path()); "
        "print(t('training/configs/tiny-cpu.yaml', d).finetune); "
        "print(len(g('opus100', ['corpus.path=/x']).supervised)); "
        "print(r('opus100-supervised').name)"
    )
    result = run(installed, tmp_path, "-c", code)
    assert result.returncode == 0, result.stderr
    ds_json, finetune, _, recipe = result.stdout.split()
    assert Path(ds_json).is_file() and Path(ds_json).name == "zero3_cpu.json"
    assert finetune == "full" and recipe == "opus100-supervised"


def test_build_and_train_from_another_folder(
    installed: Path, freedict_corpus: Path, tokenizer_dir: Path, tmp_path: Path
) -> None:
    overrides = freedict_overrides(freedict_corpus, tokenizer_dir, "curriculum=MT")
    build = run(installed, tmp_path, "-m", "data_prep", "build", "freedict", *overrides,
                "max_pairs=300", "--out", "shards")  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    train = run(
        installed, tmp_path, "-m", "torch.distributed.run", "--nproc_per_node", "1",
        "--master_port", str(free_port()), "-m", "training.train", "--config", "tiny-cpu",
        "data=shards", "run_dir=run", "max_steps_per_stage=2", "log_every=1",
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    assert (tmp_path / "run" / "export" / "model" / "model.safetensors").is_file()
