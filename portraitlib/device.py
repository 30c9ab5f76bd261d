"""The device and RNG policy of the study, in one place.

- The device is chosen once, at the entry point (:func:`pick_device`: ``auto``, ``cpu``, ``cuda``,
  ``cuda:N`` or ``mps``), and everything else follows the tensors: a training loop works on the
  device of the network it trains (:func:`device_of`), draws its randomness from a
  ``torch.Generator`` on that device (:func:`seeded_generator`), and moves each batch there
  (:func:`draw_batch`), so data sets may stay on the CPU.
- Networks are built on the CPU inside a forked RNG seeded from (profile seed, stage name)
  (:func:`seeded_build`), then moved to the device: the same seed gives bit-identical starting
  weights whether the rest of the run was cached, partly cached or clean, and on every device.
"""
from __future__ import annotations

import contextlib
import hashlib
from typing import Iterator

import torch
from torch import nn

from portraitlib.distributed import shard

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
"""What ``--device`` accepts (``cuda:N`` too)."""


def pick_device(choice: str) -> torch.device:
    """``auto``: the first accelerator torch reports (CUDA, then MPS), else the CPU. ``cuda``,
    ``cuda:N`` and ``mps`` must exist: asking for an absent accelerator is an error, not a silent
    CPU run."""
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = choice.split(":", 1)[0]
    if kind not in DEVICE_CHOICES:
        raise ValueError(f"unknown device {choice!r}; valid: {', '.join(DEVICE_CHOICES)} or cuda:N")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {choice!r} asked for, but torch sees no CUDA GPU (use auto or cpu)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {choice!r} asked for, but torch sees no MPS device (use auto or cpu)")
    device = torch.device(choice)
    return torch.device("cuda", torch.cuda.current_device()) if device == torch.device("cuda") else device


def configure_backends(device: torch.device) -> None:
    """On CUDA: TF32 matrix products and convolutions (the float32 results move by ~1e-3
    relative; the CPU is never affected)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def device_of(module: nn.Module) -> torch.device:
    """The device of a module's first parameter (or buffer); the CPU for an empty module."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed`` (CPU and CUDA streams differ)."""
    return torch.Generator(device=device).manual_seed(int(seed))


def stage_seed(seed: int, stage: str) -> int:
    """The seed of one stage's networks: a hash of (profile seed, stage name), in [0, 2**63)."""
    digest = hashlib.sha256(f"{int(seed)}/{stage}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@contextlib.contextmanager
def seeded_build(seed: int, stage: str) -> Iterator[None]:
    """Build networks here: on the CPU, from the CPU RNG seeded with :func:`stage_seed`, without
    touching the caller's RNG state. Move them to the device afterwards."""
    with torch.random.fork_rng(devices=[]), torch.device("cpu"):
        torch.manual_seed(stage_seed(seed, stage))
        yield


def draw_batch(data: torch.Tensor, n: int, rng: torch.Generator, *, device: torch.device | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random rows of ``data`` (indices drawn from ``rng`` on its own device) and those
    indices; the rows are moved to ``device`` (default: ``rng``'s). In a data-parallel run ``n`` is
    the global batch: every rank draws it and reads only its own slice (``distributed.shard``)."""
    idx = shard(torch.randint(len(data), (n,), generator=rng, device=rng.device))
    rows = data[idx.to(data.device)]
    return rows.to(device or rng.device), idx


def rng_states(generator: torch.Generator) -> dict:
    """Everything a resumed loop needs to draw the same numbers: the loop's generator and torch's
    global CPU (and, where present, CUDA) RNG states."""
    states = {"rng": generator.get_state(), "torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda_rng"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(generator: torch.Generator, states: dict) -> None:
    """Inverse of :func:`rng_states` (the CUDA states only where CUDA is present)."""
    generator.set_state(states["rng"])
    torch.set_rng_state(states["torch_rng"])
    if "cuda_rng" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda_rng"])
