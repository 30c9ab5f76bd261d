"""Data-parallel training over several processes (``torchrun --nproc_per_node=N``), one code path.

Every rank runs the same loop with the same seeded generator and draws each step's randomness at
the size of the GLOBAL batch, then keeps its own contiguous slice (:func:`shard`): the ranks
together see exactly the batch one process would draw. Each rank computes its slice's losses
(means over the slice), and before every optimiser step the gradients are averaged over the ranks
(:func:`average_gradients`: one flat all-reduce, as the official StyleGAN2-ADA / EG3D training
loops do rather than wrapping the networks in ``DistributedDataParallel``, whose hooks need every
call to go through the wrapper's ``forward`` while these loops call ``G.mapping`` and
``G.synthesis``). For losses that are per-sample means this is the gradient of the global batch;
the minibatch-standard-deviation layer and noise drawn inside the networks are per rank, as in
the official code. Only rank 0 writes checkpoints, artefacts and reports (:func:`is_writer`).

One process (no process group) is the world size 1 case: every function here is then a no-op.

    device = init_from_env(pick_device("auto"))   # torchrun's env -> process group; cuda:LOCAL_RANK
    idx = shard(torch.randint(n, (batch,), generator=rng))
    ...
    loss.backward(); average_gradients(params); opt.step()
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def world_size() -> int:
    """Processes training together (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank: the process group's, else torchrun's ``RANK`` when its ``WORLD_SIZE``
    is above 1 (the study runner, which runs each rank's notebooks, is not in the group its
    notebooks join), else 0."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0


def is_writer() -> bool:
    """Whether this process writes files (rank 0)."""
    return rank() == 0


def init_from_env(device: torch.device) -> torch.device:
    """Join the process group torchrun describes in the environment (``WORLD_SIZE`` > 1): NCCL on
    CUDA (this process's GPU is ``cuda:LOCAL_RANK``), gloo on the CPU. Returns the device this rank
    trains on; without torchrun, ``device`` unchanged."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


def barrier() -> None:
    """Wait for every rank (nothing without a process group)."""
    if world_size() > 1:
        dist.barrier()


def shard(x: torch.Tensor) -> torch.Tensor:
    """This rank's contiguous slice of a global batch ``x`` (first axis divisible by the world size)."""
    n = world_size()
    if n == 1:
        return x
    if len(x) % n:
        raise ValueError(f"a batch of {len(x)} does not split over {n} processes: use a multiple of {n}")
    return x.chunk(n)[rank()]


def average_gradients(params) -> None:
    """Replace each parameter's gradient by its mean over the ranks (one flat all-reduce)."""
    n = world_size()
    if n == 1:
        return
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    dist.all_reduce(flat)
    flat /= n
    for p, g in zip(params, flat.split([p.numel() for p in params])):
        p.grad.copy_(g.view_as(p.grad))


def optimiser_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """zero_grad, backward, gradients averaged over the ranks, step: one update of a data-parallel run."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    average_gradients(p for group in optimizer.param_groups for p in group["params"])
    optimizer.step()


def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (a guard: seeded builds already agree)."""
    if world_size() == 1:
        return
    with torch.no_grad():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)
