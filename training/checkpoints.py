"""Checkpoints: atomic saves, verified resume with a fallback, and the typed position.

A save goes to a hidden `.stepNNNNNNNN.partial` folder; once every rank has written its
files, each rank hashes a share of them, rank 0 writes `checksums.json`, renames the
folder to `stepNNNNNNNN` and only then points `latest` at it. A failed or killed save
therefore leaves nothing a resume would pick. On resume the newest `step*` folder whose
files match their checksums and that DeepSpeed loads is used; a bad one is named in a
warning and the previous one tried. Every decision is agreed over the process group, so
no rank goes on alone (and no rank waits forever for one that stopped).
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from core.fileio import atomic_open, sha256_file

CHECKSUMS = "checksums.json"


class CheckpointError(Exception):
    """A checkpoint could not be saved or none could be loaded (the message says why)."""


@dataclass(frozen=True)
class LossWindow:
    """The logging interval's running sums, so a resumed run logs the same means."""

    loss_sum: float = 0.0
    answer_tokens: float = 0.0


@dataclass(frozen=True)
class ResumePosition:
    """Where training stands after `global_step` optimizer steps: `step` steps done in
    stage `stage`, the logger's running totals and the logging interval's sums."""

    stage: int = 0
    step: int = 0
    global_step: int = 0
    totals: dict[str, float] = field(default_factory=dict)
    window: LossWindow = field(default_factory=LossWindow)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResumePosition:
        window = LossWindow(**data["window"]) if "window" in data else LossWindow()
        return cls(
            stage=int(data["stage"]),
            step=int(data["step"]),
            global_step=int(data["global_step"]),
            totals=dict(data["totals"]),
            window=window,
        )


def agree(ok: bool) -> bool:
    """True on every rank when `ok` holds on every rank."""
    flag = torch.tensor(1 if ok else 0)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag)


def gather_problems(problems: list[str]) -> list[str]:
    """Every rank's problems, on every rank, without repeats."""
    gathered: list[list[str] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, problems)
    return list(dict.fromkeys(p for part in gathered for p in part or []))


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS)


def _shared_hashes(folder: Path, rank: int, world: int) -> dict[str, str]:
    """sha256 of every file under `folder` (each rank hashes a share), on every rank."""
    mine = {str(p.relative_to(folder)): sha256_file(p) for p in _files(folder)[rank::world]}
    gathered: list[dict[str, str] | None] = [None] * world
    dist.all_gather_object(gathered, mine)
    return {k: v for part in gathered for k, v in (part or {}).items()}


class Checkpoints:
    """DeepSpeed checkpoints under one folder, newest `keep` kept."""

    def __init__(self, folder: Path, keep: int, rank: int, world: int) -> None:
        self.folder, self.keep, self.rank, self.world = folder, keep, rank, world

    def _rank0(self, action: Any, what: str) -> None:
        """Run `action` on rank 0; every rank raises CheckpointError when it failed."""
        problem = ""
        if self.rank == 0:
            try:
                action()
            except OSError as err:
                problem = f"{what}: {err}"
        problems = gather_problems([problem] if problem else [])
        if problems:
            raise CheckpointError("; ".join(problems))

    def _free_space(self) -> str:
        try:
            return f"{shutil.disk_usage(self.folder).free / 2**20:,.1f} MiB free there"
        except OSError:
            return "free space unknown"

    def _remove_partials(self) -> None:
        if self.rank == 0:
            for partial in self.folder.glob(".step*.partial"):
                shutil.rmtree(partial, ignore_errors=True)

    def save(self, engine: Any, position: ResumePosition) -> None:
        tag = f"step{position.global_step:08d}"
        partial = self.folder / f".{tag}.partial"

        def prepare() -> None:
            self.folder.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(partial, ignore_errors=True)  # a killed save's leftovers

        self._rank0(prepare, f"cannot prepare {self.folder}")
        problem = ""
        try:
            engine.save_checkpoint(
                str(self.folder), tag=partial.name, client_state={"position": asdict(position)},
                save_latest=False,
            )  # fmt: skip
        except (OSError, RuntimeError) as err:
            problem = f"rank {self.rank}: {type(err).__name__}: {err}"
            dist.barrier()  # the ranks that wrote their files wait in DeepSpeed's last barrier
        problems = gather_problems([problem] if problem else [])
        if not problems:
            hashes = _shared_hashes(partial, self.rank, self.world)
            try:
                self._rank0(lambda: self._publish(partial, tag, hashes), "cannot finish the save")
            except CheckpointError as err:
                problems = [str(err)]
        if problems:
            self._remove_partials()
            dist.barrier()
            raise CheckpointError(
                f"saving checkpoint {self.folder / tag} failed ({self._free_space()}; is the "
                f"disk full or the folder not writable?): {'; '.join(problems)}. Nothing was "
                "left half-written; the previous checkpoints are intact."
            )
        if self.rank == 0:
            tags = sorted(p for p in self.folder.glob("step*") if p.is_dir())
            for old in tags[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        dist.barrier()

    def _publish(self, partial: Path, tag: str, hashes: dict[str, str]) -> None:
        with atomic_open(partial / CHECKSUMS) as handle:
            json.dump(hashes, handle, indent=1, sort_keys=True)
        final = self.folder / tag
        if final.exists():  # a rerun from an older checkpoint passes this step again
            shutil.rmtree(final)
        partial.rename(final)
        with atomic_open(self.folder / "latest") as handle:
            handle.write(tag)

    def _verify(self, folder: Path) -> list[str]:
        """Files that are missing or differ from the checksums written at save time."""
        listed = folder / CHECKSUMS
        if not listed.is_file():
            return []  # saved before checksums were written: the load itself will tell
        expected = json.loads(listed.read_text(encoding="utf-8"))
        names = sorted(expected)[self.rank :: self.world]
        problems = []
        for name in names:
            path = folder / name
            if not path.is_file():
                problems.append(f"{path}: missing")
            elif sha256_file(path) != expected[name]:
                problems.append(f"{path}: sha256 differs from {CHECKSUMS} (corrupt or cut)")
        return problems

    def _openable(self, folder: Path) -> list[str]:
        """This rank's DeepSpeed files that torch cannot open (memory-mapped: only the
        archive's index and pickles are read, not the tensors)."""
        problems = []
        for path in sorted(folder.glob(f"*zero_pp_rank_{self.rank}_*.pt")):
            try:
                torch.load(path, map_location="cpu", mmap=True, weights_only=False)
            except Exception as err:  # any unreadable archive: this checkpoint is unusable
                problems.append(f"{path} (rank {self.rank}): {type(err).__name__}: {err}")
        return problems

    def resume(self, engine: Any) -> ResumePosition | None:
        """Load the newest usable checkpoint; None when there is none to resume from."""
        self._remove_partials()
        listing: list[Any] = [sorted(p.name for p in self.folder.glob("step*") if p.is_dir())]
        dist.broadcast_object_list(listing, src=0)  # every rank tries the same tags
        tags = listing[0]
        for tag in reversed(tags):
            folder = self.folder / tag
            try:
                problems = gather_problems(self._verify(folder))
            except (OSError, ValueError) as err:
                problems = gather_problems([f"{folder / CHECKSUMS}: {err}"])
            if not problems:
                # A rank whose own files do not even open must not enter DeepSpeed's load:
                # the other ranks would go on into its collectives alone and desync.
                problems = gather_problems(self._openable(folder))
            client: dict[str, Any] | None = None
            if not problems:
                try:
                    path, client = engine.load_checkpoint(str(self.folder), tag=tag)
                    load_problems = [] if path else [f"{folder}: DeepSpeed could not load it"]
                except Exception as err:  # any failure means: try the previous one
                    load_problems = [f"{folder} (rank {self.rank}): {type(err).__name__}: {err}"]
                problems = gather_problems(load_problems)
            if not problems:
                assert client is not None
                return ResumePosition.from_dict(client["position"])
            if self.rank == 0:
                print(
                    f"warning: checkpoint {folder} cannot be used ({'; '.join(problems)}); "
                    "trying the previous one", file=sys.stderr, flush=True,
                )  # fmt: skip
        if tags:
            raise CheckpointError(
                f"no checkpoint in {self.folder} can be loaded (tried {', '.join(tags)}); "
                "move the folder away to start afresh, or set resume=never"
            )
        return None
