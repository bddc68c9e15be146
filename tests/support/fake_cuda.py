"""Make CPU tests fail the way a GPU run fails: CUDA tensors and an NCCL-like group on CPU.

A GPU run breaks in two ways that a CPU run never shows: a CPU tensor handed to an NCCL
collective ("No backend type associated with device type cpu"), and a CPU tensor mixed
with a model's CUDA tensors ("Expected all tensors to be on the same device"). This
module reproduces both on a machine without CUDA (PyTorch 2.13, CPU build):

- `FakeCudaTensor`: a tensor whose `device` is `cuda:N` as far as any code can tell
  (`.device`, `.is_cuda`, the dispatcher's CUDA key) while its values live in an
  ordinary CPU tensor. Every ATen op is run on those CPU values (`__torch_dispatch__`)
  after PyTorch's device rule is checked here: a tensor on another device (a CPU tensor
  that is not a 0-dim scalar, or another cuda:N) raises a RuntimeError worded as
  PyTorch's on a GPU. Copies between devices (`copy_`, `.to`, `.cpu()`) and CPU indices
  in advanced indexing are allowed, as CUDA allows them. Results stay on the fake device.
  The few Python bindings that take a CUDA device guard before dispatching (indexing,
  some operators) run on the CPU values under the same rule.
- `fake_cuda()`: a TorchFunctionMode under which `device="cuda[:N]"` in a factory
  (`torch.tensor`, `zeros`, `full`, `arange`, ...), `.to("cuda")`, `.to(cuda_tensor)`
  and `.cuda()` give FakeCudaTensors, so code that builds its tensors on the model's
  device works, while code that leaves one on the CPU fails. `to_fake_cuda(model)`
  moves a real model's weights there (frozen: forwards only, see its doc).
- `init_cuda_only_group(rank, world, port)`: a default process group whose backend is
  registered for the `cuda` device type only, as NCCL is. c10d routes every collective
  by its tensors' device: a CPU tensor raises PyTorch's own "No backend type associated
  with device type cpu"; a FakeCudaTensor reaches the group's cuda backend, which is
  gloo running on the CPU values (so 2-rank tests really communicate). `barrier()` is
  run on gloo directly: on a CPU build PyTorch picks the CPU for a barrier's tensor,
  where NCCL on a GPU machine would pick the current CUDA device.

What this cannot show: CUDA kernels (numerics, unsupported dtypes), NCCL itself
(timeouts, hangs, topology), GPU memory, streams and synchronisation. Ops run in Python
per call, so keep the models tiny. See docs/gpu.md.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map

BACKEND = "fake_nccl"
_aten = torch.ops.aten
# Ops that CUDA runs with operands on another device: copies, and CPU index tensors.
_CROSS_DEVICE_OK = {
    _aten.copy_.default,
    _aten._to_copy.default,
    _aten._copy_from.default,
    _aten._copy_from_and_resize.default,
    _aten.index.Tensor,
    _aten.index_put_.default,
    _aten.index_put.default,
    _aten._index_put_impl_.default,
}


def _cuda(device: Any) -> torch.device | None:
    """`device` as a torch.device when it names CUDA, else None."""
    if isinstance(device, (str, torch.device)):
        parsed = torch.device(device)
        if parsed.type == "cuda":
            return torch.device("cuda", parsed.index or 0)
    return None


class FakeCudaTensor(torch.Tensor):
    """A tensor on `cuda:N` as far as code can tell, holding CPU values (module doc)."""

    _data: torch.Tensor
    __torch_function__ = torch._C._disabled_torch_function_impl  # results stay wrappers

    @staticmethod
    def __new__(cls, data: torch.Tensor, device: torch.device | None = None) -> FakeCudaTensor:
        if isinstance(data, FakeCudaTensor):
            data = data._data
        wrapper = torch.Tensor._make_wrapper_subclass(
            cls, data.shape, strides=data.stride(), storage_offset=data.storage_offset(),
            dtype=data.dtype, layout=data.layout, device=device or torch.device("cuda", 0),
            requires_grad=data.requires_grad,
        )  # fmt: skip
        wrapper._data = data.detach() if data.requires_grad else data
        return wrapper

    def __repr__(self, *, tensor_contents: Any = None) -> str:
        return f"FakeCudaTensor({self._data!r}, device='{self.device}')"

    def tolist(self) -> Any:  # a real CUDA tensor copies to the host; so does this
        return self._data.tolist()

    def numpy(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() to "
            "copy the tensor to host memory first."
        )

    @classmethod
    def __torch_dispatch__(
        cls, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func.namespace == "c10d":
            return _collective(func, args, kwargs)
        device = _check_devices(func, args, kwargs)
        inner: dict[int, FakeCudaTensor] = {}
        out = _call_unwrapped(func, args, kwargs, inner)
        target = _cuda(kwargs.get("device")) if "device" in kwargs else device
        if "device" in kwargs and target is None:
            return out  # an explicit copy to the CPU: a plain tensor

        def wrap(x: Any) -> Any:
            if not isinstance(x, torch.Tensor) or isinstance(x, FakeCudaTensor):
                return x
            if id(x) in inner:  # an in-place op returns its input: the same wrapper
                return inner[id(x)]
            return FakeCudaTensor(x, target)

        return tree_map(wrap, out)


def _call_unwrapped(
    func: Any, args: tuple, kwargs: dict, wrappers: dict[int, FakeCudaTensor]
) -> Any:
    """`func` on the CPU values of its FakeCudaTensors; `wrappers` maps each value's id to
    its wrapper, so an op that returns its input (in place) can hand the wrapper back."""

    def unwrap(x: Any) -> Any:
        if isinstance(x, FakeCudaTensor):
            wrappers[id(x._data)] = x
            return x._data
        return x

    return func(*tree_map(unwrap, args), **tree_map(unwrap, kwargs))


def _check_devices(func: Any, args: tuple, kwargs: dict) -> torch.device:
    """The fake device of the op; PyTorch's error when an operand is elsewhere."""
    tensors = [x for x in tree_flatten((args, kwargs))[0] if isinstance(x, torch.Tensor)]
    fake = [t.device for t in tensors if isinstance(t, FakeCudaTensor)]
    device = fake[0]
    if func in _CROSS_DEVICE_OK:
        return device
    others = {d for d in fake if d != device}
    others |= {
        t.device for t in tensors if not isinstance(t, FakeCudaTensor) and t.dim() > 0
    }  # a 0-dim CPU tensor is a scalar to CUDA kernels
    if others:
        other = sorted(map(str, others))[0]
        raise RuntimeError(
            "Expected all tensors to be on the same device, but found at least two devices, "
            f"{device} and {other}! (when running {func})"
        )
    return device


_NO_CUDA = "not linked with support for cuda"
# Python-level calls that CUDA runs with CPU operands: indexing with CPU indices or values.
_CROSS_DEVICE_CALLS = {"__getitem__", "__setitem__", "index_put_", "index_put", "copy_"}


def _on_values(func: Any, args: tuple, kwargs: dict) -> Any:
    """`func` run on the CPU values of its FakeCudaTensors, after the device check."""
    tensors = [x for x in tree_flatten((args, kwargs))[0] if isinstance(x, torch.Tensor)]
    fake = [t for t in tensors if isinstance(t, FakeCudaTensor)]
    device = fake[0].device
    others = {t.device for t in fake if t.device != device}
    if getattr(func, "__name__", "") not in _CROSS_DEVICE_CALLS:
        others |= {t.device for t in tensors if not isinstance(t, FakeCudaTensor) and t.dim()}
    if others:
        raise RuntimeError(
            "Expected all tensors to be on the same device, but found at least two devices, "
            f"{device} and {sorted(map(str, others))[0]}! (when running {func})"
        )
    wrappers = {id(t._data): t for t in fake}

    def unwrap(x: Any) -> Any:
        if isinstance(x, slice):  # a 0-dim tensor as a bound: x[:, :n]
            return slice(unwrap(x.start), unwrap(x.stop), unwrap(x.step))
        return x._data if isinstance(x, FakeCudaTensor) else x

    out = func(*tree_map(unwrap, args), **tree_map(unwrap, kwargs))

    def wrap(x: Any) -> Any:
        if not isinstance(x, torch.Tensor):
            return x
        return wrappers[id(x)] if id(x) in wrappers else _to_fake(x, device)

    return tree_map(wrap, out)


def _to_fake(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor) and not isinstance(value, FakeCudaTensor):
        return FakeCudaTensor(value, device)
    if isinstance(value, FakeCudaTensor) and value.device != device:
        return FakeCudaTensor(value._data, device)
    return value


class _FakeCudaMode(TorchFunctionMode):
    """CUDA factories and moves give FakeCudaTensors (see the module doc)."""

    def __torch_function__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = dict(kwargs or {})
        name = getattr(func, "__name__", "")
        if name == "cuda" and args and isinstance(args[0], torch.Tensor):
            device = _cuda(args[1] if len(args) > 1 else kwargs.pop("device", None) or "cuda")
            return _to_fake(args[0], device or torch.device("cuda", 0))
        if name == "to" and args and isinstance(args[0], torch.Tensor):
            return self._move(func, args, kwargs)
        device = _cuda(kwargs.get("device"))
        if device is not None:
            kwargs["device"] = "cpu"
            return tree_map(lambda x: _to_fake(x, device), func(*args, **kwargs))
        try:
            return func(*args, **kwargs)
        except RuntimeError as err:
            if _NO_CUDA not in str(err):
                raise
        # Some Python bindings (indexing, a few operators) take a CUDA device guard before
        # dispatching, which a CPU build lacks: run those on the CPU values, same rule.
        return _on_values(func, args, kwargs)

    @staticmethod
    def _move(func: Any, args: tuple, kwargs: dict) -> Any:
        """Tensor.to(device[, dtype]), .to(dtype), .to(other_tensor), with keywords."""
        tensor, rest = args[0], list(args[1:])
        if "device" in kwargs:
            target = kwargs["device"]
        elif rest and isinstance(rest[0], (str, torch.device)):
            target = rest[0]
        elif rest and isinstance(rest[0], torch.Tensor):
            target = rest[0].device
        else:
            target = None
        device = _cuda(target)
        if device is None:
            return func(*args, **kwargs)
        if "device" in kwargs:
            kwargs["device"] = "cpu"
        elif isinstance(rest[0], torch.Tensor):
            rest[0] = rest[0].dtype
        else:
            rest[0] = "cpu"
        source = tensor._data if isinstance(tensor, FakeCudaTensor) else tensor
        moved = func(source, *rest, **kwargs)
        if moved is source and isinstance(tensor, FakeCudaTensor) and tensor.device == device:
            return tensor  # already there: .to returns the tensor itself
        return _to_fake(moved, device)


@contextmanager
def fake_cuda() -> Iterator[None]:
    """Within: CUDA tensors are FakeCudaTensors (module doc)."""
    with _FakeCudaMode():
        yield


def to_fake_cuda(module: torch.nn.Module, index: int = 0) -> torch.nn.Module:
    """`module` with every parameter and buffer on the fake `cuda:index`, in place (tied
    weights stay tied), frozen: autograd needs a CUDA device guard, which a CPU build
    lacks (a backward on the fake device aborts the process), so only forwards run there.
    `Module.to` cannot do it: it would set a CPU parameter's `.data` to the wrapper,
    leaving a parameter that reports CUDA but is no FakeCudaTensor."""
    device, moved = torch.device("cuda", index), {}
    for sub in module.modules():
        for name, param in sub._parameters.items():
            if param is not None:
                if id(param) not in moved:
                    fake = FakeCudaTensor(param.detach(), device)
                    moved[id(param)] = torch.nn.Parameter(fake, requires_grad=False)
                sub._parameters[name] = moved[id(param)]
        for name, buffer in sub._buffers.items():
            if buffer is not None:
                sub._buffers[name] = _to_fake(buffer, device)
    return module


class _CudaOnlyGroup(dist.ProcessGroup):
    """A process group whose only backend serves the `cuda` device type (module doc)."""

    def __init__(self, store: dist.Store, rank: int, size: int, timeout: timedelta) -> None:
        super().__init__(rank, size)
        self.gloo = dist.ProcessGroupGloo(store, rank, size, timeout)
        self.gloo._set_sequence_number_for_group()
        cuda, custom = torch.device("cuda"), dist.ProcessGroup.BackendType.CUSTOM
        self._register_backend(cuda, custom, self.gloo)
        self._set_default_backend(custom)
        # The same gloo backend seen as a CPU group: FakeCudaTensor collectives run their
        # CPU values through it, after c10d has routed them to the cuda backend.
        self.cpu_view = dist.ProcessGroup(rank, size)
        self.cpu_view._register_backend(
            torch.device("cpu"), dist.ProcessGroup.BackendType.GLOO, self.gloo
        )

    def barrier(self, opts: Any = None) -> Any:
        return self.gloo.barrier(dist.BarrierOptions())


def _collective(func: Any, args: tuple, kwargs: dict) -> Any:
    """A c10d op on FakeCudaTensors: run on their CPU values through the group's gloo."""
    names = [a.name for a in func._schema.arguments]
    args = list(args)
    position = names.index("process_group")
    group = dist.ProcessGroup.unbox(args[position])
    if not isinstance(group, _CudaOnlyGroup):
        raise RuntimeError(f"{func} on FakeCudaTensors needs init_cuda_only_group()")
    args[position] = group.cpu_view.boxed()
    wrappers: dict[int, FakeCudaTensor] = {}
    out = _call_unwrapped(func, tuple(args), kwargs, wrappers)
    return tree_map(lambda x: wrappers.get(id(x), x) if isinstance(x, torch.Tensor) else x, out)


def register_backend() -> None:
    if BACKEND.upper() not in dist.Backend._plugins:
        dist.Backend.register_backend(BACKEND, _CudaOnlyGroup, devices=["cuda"])


def init_cuda_only_group(
    rank: int, world: int, port: int, timeout: timedelta = timedelta(seconds=60)
) -> None:
    """The default process group, serving CUDA tensors only, as NCCL does (module doc)."""
    register_backend()
    dist.init_process_group(
        BACKEND, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
        timeout=timeout,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def cuda_only_group(rank: int = 0, world: int = 1, port: int | None = None) -> Iterator[None]:
    """`init_cuda_only_group` for the duration (a one-rank group runs in-process: c10d
    routes by device the same way for one rank as for many)."""
    init_cuda_only_group(rank, world, port or free_port())
    try:
        yield
    finally:
        dist.destroy_process_group()


def check_two_ranks(rank: int, port: int) -> None:
    """One rank of tests/training/test_gpu_path.py's 2-rank check (spawned: defined here
    so that the ranks import this small module only)."""
    with cuda_only_group(rank, 2, port), fake_cuda():
        try:
            dist.all_reduce(torch.ones(1))
            raise AssertionError("a CPU tensor was reduced by a CUDA-only group")
        except RuntimeError as err:
            assert "No backend type associated with device type cpu" in str(err), err
        from core.devices import collective_device

        value = torch.tensor([rank + 1.0, 10.0 * rank], device=collective_device())
        dist.all_reduce(value)
        assert value.device.type == "cuda" and value.tolist() == [3.0, 10.0], value
        flag = torch.tensor([rank], device=collective_device())
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        assert flag.item() == 1
        dist.barrier()
