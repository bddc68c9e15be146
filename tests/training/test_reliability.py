"""Faults a real run meets, tried on real 2-rank runs: damaged shards, a wrong model path,
a corrupt newest checkpoint, a failing checkpoint write, a kill (/dev/shm), and what a
resumed run writes to metrics.jsonl."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.dist import SHM
from tests.conftest import REPO_ROOT, mount_tmpfs
from tests.training.conftest import (
    TINY,
    TRAIN,
    copy_build,
    launch_command,
    logged_steps,
    losses,
    run_training,
    train_env,
)
from tests.training.test_config import assert_fails_before_training, train_once

COMMON = ("max_steps_per_stage=6", "save_every=2", "keep_last=3", "log_every=1")


def test_cut_shard_stops_the_run_before_any_rank_starts(built: Path, tmp_path: Path) -> None:
    build = copy_build(built, tmp_path / "shards")
    cut = next((build / "stage2-mt").glob("shard-*[0-9].bin"))
    cut.write_bytes(cut.read_bytes()[:-2])
    result = train_once(f"data={build}", f"run_dir={tmp_path}/run")
    assert_fails_before_training(result, str(cut), "sha256 differs")
    assert not (tmp_path / "run").exists()


def test_missing_model_folder_is_named(built: Path, tmp_path: Path) -> None:
    result = train_once(
        f"data={built}", f"run_dir={tmp_path}/run", "model.tiny=false",
        f"model.name={tmp_path}/no/such/model",
    )  # fmt: skip
    assert_fails_before_training(result, "model.name", "no such folder")
    assert "Repo id" not in result.stderr
    header = result.stderr.splitlines()[0]  # names the model, not the shard folder
    assert header.startswith(f"error: model '{tmp_path}/no/such/model'"), header


def test_uncached_hub_name_offline_fails_at_once(built: Path, tmp_path: Path) -> None:
    command = [sys.executable, TRAIN, "--config", TINY, f"data={built}", f"run_dir={tmp_path}/r"]
    started = time.perf_counter()
    result = subprocess.run(
        [*command, "model.tiny=false", "model.name=bigscience/bloomz-no-such-size"],
        cwd=REPO_ROOT, env={**train_env(), "HF_HUB_OFFLINE": "1"}, capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    assert_fails_before_training(result, "model.name", "not in the local cache")
    assert time.perf_counter() - started < 60  # no minute of retries


def test_second_training_in_one_run_dir_is_refused(built: Path, tmp_path: Path) -> None:
    from tests.support.lock_holder import start_holder

    run = tmp_path / "run"
    holder = start_holder(run)  # another process owns the run folder (as a running training)
    try:
        result = train_once(f"data={built}", f"run_dir={run}")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert_fails_before_training(
        result, f"{run}: already being written by another process", f"pid {holder.pid}"
    )
    assert not run.exists()


def test_config_error_is_printed_once_under_the_launcher(built: Path, tmp_path: Path) -> None:
    result = run_training(f"data={built}", f"run_dir={tmp_path}/run", "bogus=1")
    assert result.returncode != 0
    assert result.stderr.count("bogus: unknown key") == 1, result.stderr[-2000:]


def cut_file(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_corrupt_newest_checkpoints_fall_back_to_a_loadable_one(
    built: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    # Small parameters kept whole on every rank (DeepSpeed's default threshold): then
    # DeepSpeed's load_checkpoint runs collectives after reading the files, so a rank whose
    # file does not open must not enter it at all, or the ranks desync (gloo: "Received
    # data size doesn't match").
    zero3 = json.loads((REPO_ROOT / "ds_configs" / "zero3.json").read_text())
    zero3["zero_optimization"]["stage3_param_persistence_threshold"] = 100_000
    (tmp_path / "zero3.json").write_text(json.dumps(zero3))
    args = (
        f"data={built}", f"run_dir={run}", "finetune=lora", "lora.dropout=0.1",
        f"deepspeed={tmp_path / 'zero3.json'}", *COMMON,
    )  # fmt: skip
    first = run_training(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    straight = losses(run)
    assert sorted(straight) == list(range(1, 13))
    folder = run / "checkpoints"
    assert sorted(p.name for p in folder.glob("step*")) == [
        "step00000008", "step00000010", "step00000012",
    ]  # fmt: skip
    # Newest: a file cut short (its checksum tells). Next: no checksums (as saved by older
    # code) and rank 1's optimizer file garbled, so only rank 1's load fails.
    newest = sorted((folder / "step00000012").glob("*optim_states.pt"))[0]
    cut_file(newest)
    (folder / "step00000010" / "checksums.json").unlink()
    garbled = next((folder / "step00000010").glob("zero_pp_rank_1_*optim_states.pt"))
    garbled.write_bytes(b"\x00" * garbled.stat().st_size)
    (run / "export").rename(run / "export-first")

    again = run_training(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert str(newest) in again.stderr and "sha256 differs" in again.stderr
    assert f"checkpoint {folder / 'step00000010'} cannot be used" in again.stderr
    assert "Traceback" not in again.stderr
    assert losses(run) == straight  # resumed from step 8, steps 9-12 the same again
    steps = logged_steps(run)
    assert steps == list(range(1, 13))  # no duplicate rows
    assert (run / "export" / "adapter" / "adapter_model.safetensors").exists()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: the disk of a run whose checkpoint does not fit (needs root)."""
    mount = tmp_path / "small-disk"
    if not mount_tmpfs(mount, "size=64k"):
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_at_checkpoint_stops_cleanly(
    built: Path, tmp_path: Path, tiny_disk: Path
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoints").symlink_to(tiny_disk)
    result = run_training(f"data={built}", f"run_dir={run}", *COMMON)
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.count("error: saving checkpoint") == 1, result.stderr[-3000:]
    assert "\nerror: saving checkpoint" in result.stderr  # not after the progress bar
    assert "disk full" in result.stderr and "Traceback" not in result.stderr
    assert list(tiny_disk.iterdir()) == []  # no partial step folder, no `latest`
    assert not (run / "export").exists()


def run_buffers(port: str) -> list[Path]:
    return list(SHM.glob(f"deepspeed_*_{port}_*"))


def test_no_shm_buffer_survives_a_kill_and_stale_ones_go(built: Path, tmp_path: Path) -> None:
    stale = SHM / f"deepspeed_allreduce_{os.getuid()}_127.0.0.9_{os.getpid()}_0"
    stale.write_bytes(b"\x00" * 4096)
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    run = tmp_path / "run"
    command = launch_command(f"data={built}", f"run_dir={run}", "max_steps_per_stage=200",
                             "log_every=1")  # fmt: skip
    port = command[command.index("--master_port") + 1]
    proc = subprocess.Popen(command, cwd=REPO_ROOT, env=train_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.time() + 300
        while not ((run / "metrics.jsonl").exists() and max(losses(run), default=0) >= 2):
            assert proc.poll() is None and time.time() < deadline, "run ended early"
            time.sleep(0.05)
        assert run_buffers(port) == []  # released once every rank had mapped them
        assert not stale.exists()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        stale.unlink(missing_ok=True)
    assert run_buffers(port) == []


def test_lora_bf16_merged_export_is_bf16_and_readable(built: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = subprocess.run(
        launch_command(f"data={built}", f"run_dir={run}", "finetune=lora", "precision=bf16",
                       "export_merged=true", "max_steps_per_stage=2"),
        cwd=REPO_ROOT, env=train_env(), capture_output=True, text=True, timeout=600,
        check=False, preexec_fn=lambda: os.umask(0o022),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    from safetensors import safe_open

    with safe_open(str(run / "export" / "merged" / "model.safetensors"), "pt") as weights:
        dtypes = {weights.get_slice(k).get_dtype() for k in weights.keys()}  # noqa: SIM118
    assert dtypes == {"BF16"}
    for name in ("adapter", "merged"):
        folder = run / "export" / name
        assert folder.stat().st_mode & 0o777 == 0o755, name
        assert {f.stat().st_mode & 0o777 for f in folder.iterdir()} == {0o644}, name
