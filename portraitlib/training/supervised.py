"""The small supervised loop of the study's helper networks (pose regressor, look classifier):
Adam with a one-cycle schedule over shuffled mini-batches, on the chosen device.

    model, curve = fit(lambda: PoseRegressor(), loss_of_batch, n=len(images), epochs=12, seed=0)

``loss_of_batch(model, idx, rng)`` returns the mean loss of the rows ``idx`` (drawing any
augmentation from ``rng``, a generator on the device); the curve holds each epoch's mean loss.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from portraitlib.device import seeded_generator


@torch.enable_grad()  # a study may first need the network inside a caller's no_grad block
def fit(make: Callable[[], nn.Module], loss_of_batch: Callable[[nn.Module, torch.Tensor, torch.Generator], torch.Tensor],
        *, n: int, epochs: int, seed: int, batch: int = 64, lr: float = 2e-3, device: torch.device | str = "cpu",
        desc: str | None = None) -> tuple[nn.Module, list[float]]:
    """Build ``make()`` on the CPU from torch's RNG seeded with ``seed``, move it to ``device`` and
    train it over ``n`` rows for ``epochs``; return it (eval mode) and the mean loss per epoch."""
    g = seeded_generator(seed, device)
    torch.manual_seed(seed)
    with torch.device("cpu"):
        model = make()
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * -(-n // batch))
    curve = []
    for _ in tqdm(range(epochs), desc=desc, leave=False):
        model.train()
        order = torch.randperm(n, generator=g, device=g.device)
        total = 0.0
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            loss = loss_of_batch(model, idx, g)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        curve.append(total / n)
    return model.eval(), curve
