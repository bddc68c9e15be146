"""The training step's collectives on a process group that serves CUDA only, as NCCL does
(tests/support/fake_cuda.py): token counts, loss sum, preemption flag and dev loss are
handed to it on the collective device, and a CPU tensor there would raise."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.distributed as dist
from transformers import BloomConfig, BloomForCausalLM

from core.devices import collective_device, model_device
from tests.support.fake_cuda import cuda_only_group, fake_cuda, to_fake_cuda
from training.data import IGNORE, collate
from training.devloss import DevLoss
from training.flops import StepFlops
from training.model import AnswerOnlyLM
from training.preemption import Preemption
from training.train import optimizer_step

VOCAB = 64


def tiny_lm() -> torch.nn.Module:
    torch.manual_seed(0)
    config = BloomConfig(
        vocab_size=VOCAB, hidden_size=32, n_layer=2, n_head=4, initializer_range=0.5
    )  # fmt: skip  (not flat: losses differ per row)
    return BloomForCausalLM(config).eval()


def samples(n: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(ids, answer mask) pairs of different lengths, as shards hold them."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        length = int(rng.integers(5, 12))
        ids = rng.integers(1, VOCAB, length).astype(np.int64)
        mask = np.zeros(length, dtype=np.uint8)
        mask[length // 2 :] = 1
        rows.append((ids, mask))
    return rows


class ForwardOnlyEngine:
    """The parts of a DeepSpeed engine the step uses, around a model on the fake GPU.
    Forward only: autograd on the fake device needs a CUDA build (fake_cuda's doc), and
    what is tested here is where the step's collective tensors live."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module, self.device = module, model_device(module)
        self.backward_devices: list[torch.device] = []
        self.training = True

    def __call__(self, **batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return self.module(**batch)

    def set_gradient_accumulation_boundary(self, boundary: bool) -> None:
        pass

    def backward(self, loss: torch.Tensor, scale_wrt_gas: bool = True) -> None:
        self.backward_devices.append(loss.device)

    def step(self) -> None:
        pass

    def eval(self) -> None:
        self.training = False

    def train(self) -> None:
        self.training = True


@pytest.fixture
def group() -> Iterator[None]:
    with cuda_only_group(), fake_cuda():
        yield


def test_a_cpu_tensor_in_a_collective_raises_as_under_nccl(group: None) -> None:
    assert collective_device() == torch.device("cuda", 0)
    with pytest.raises(RuntimeError, match="No backend type associated with device type cpu"):
        dist.all_reduce(torch.ones(2))
    on_device = torch.ones(2, device=collective_device())
    dist.all_reduce(on_device)
    assert on_device.device.type == "cuda" and on_device.tolist() == [1.0, 1.0]


def test_optimizer_step_reduces_counts_and_loss_on_the_collective_device(group: None) -> None:
    lm = tiny_lm()
    batches = [collate(samples(3, seed), 0) for seed in (1, 2)]
    with torch.no_grad():  # the reference: the same model and batches on the CPU
        expected = [AnswerOnlyLM(lm)(**b) for b in batches]
    engine = ForwardOnlyEngine(AnswerOnlyLM(to_fake_cuda(lm)))
    flops = StepFlops.of(lm, lm.config)
    counts, loss = optimizer_step(engine, batches, flops, world=1)
    answers = sum(int((b["labels"] != IGNORE).sum()) for b in batches)
    assert counts.device.type == "cpu" and counts[0] == answers == sum(int(c) for _, c in expected)
    assert counts[1] == sum(int(b["attention_mask"].sum()) for b in batches)
    assert loss == pytest.approx(sum(float(s) for s, _ in expected), rel=1e-5)
    assert engine.backward_devices == [torch.device("cuda", 0)] * 2


def test_preemption_flag_is_agreed_on_the_collective_device(group: None, tmp_path) -> None:
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGUSR1)}
    try:
        preemption = Preemption(tmp_path)
        assert preemption.agreed() is False
        preemption.signal = signal.SIGUSR1
        assert preemption.agreed() is True
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


class Rows:
    """Dev samples as StageData serves them (lengths, and (ids, mask) by index)."""

    def __init__(self, rows: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.rows, self.lengths = rows, np.array([len(ids) for ids, _ in rows])

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.rows[index]


def test_dev_loss_is_reduced_on_the_collective_device(group: None) -> None:
    lm, rows = tiny_lm(), samples(7, seed=3)
    with torch.no_grad():
        total, tokens = AnswerOnlyLM(lm)(**collate(rows, 0))
    engine = ForwardOnlyEngine(AnswerOnlyLM(to_fake_cuda(lm)))
    loss, count = DevLoss(Rows(rows), micro_batch=2, rank=0, world=1)(engine, 0)  # type: ignore[arg-type]
    assert count == int(tokens) and loss == pytest.approx(float(total) / int(tokens), rel=1e-5)
    assert engine.training


@pytest.mark.integration
def test_the_cuda_only_group_really_reduces_across_two_ranks() -> None:
    import torch.multiprocessing as mp

    from tests.support.fake_cuda import check_two_ranks, free_port

    # The ranks import only tests.support.fake_cuda (and torch): a few seconds each.
    mp.spawn(check_two_ranks, args=(free_port(),), nprocs=2, join=True)
