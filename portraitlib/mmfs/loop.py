"""The loop MMFS's non-adversarial trainings share (Stage I, the CLIP mapping, the guided
fine-tunings): Adam on some of a module's parameters, an EMA copy of the module (the paper keeps
one in every stage), curves, and a resumable checkpoint.

    run = Run(net, net.encoder.parameters(), lr=1e-3, betas=(0.1, 0.999), batch=8, ema_half_life=5545, seed=0)
    for step in run.steps(1000, progress="E"):
        run.update(step, loss, l1=l1)      # one Adam step on the summed loss, EMA, curves, checkpoint
    net_ema, log = run.finish()
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Iterable, Iterator

import torch
from torch import nn
from tqdm.auto import tqdm

from portraitlib.device import device_of, seeded_generator
from portraitlib.distributed import optimiser_step
from portraitlib.training.checkpoint import TrainingCheckpoint


class Run:
    """One training of ``module``'s ``params``; see the module docstring. ``rng`` (on the module's
    device) draws every batch, so a resumed run continues the same sequence."""

    def __init__(self, module: nn.Module, params: Iterable[nn.Parameter], *, lr: float, betas: tuple[float, float],
                 batch: int, ema_half_life: float, seed: int, checkpoint: Path | None = None,
                 checkpoint_every: int = 100):
        self.module = module
        self.rng = seeded_generator(seed, device_of(module))
        self.ema = copy.deepcopy(module).eval().requires_grad_(False)
        self.opt = torch.optim.Adam(list(params), lr=lr, betas=betas)
        self.ema_beta = 0.5 ** (batch / max(ema_half_life, 1e-8))
        self.checkpoint_every, self.total = checkpoint_every, 0
        self.state = (TrainingCheckpoint(checkpoint, modules={"module": module, "ema": self.ema},
                                         optimizers={"opt": self.opt}) if checkpoint else None)
        self.start, log, _ = self.state.restore(generator=self.rng) if self.state else (0, {}, None)
        self.log: dict[str, list[float]] = log or {}

    def steps(self, total: int, *, progress: str | None = None) -> Iterator[int]:
        """The step numbers still to run (all, or those after a resumed checkpoint)."""
        self.total = total
        yield from tqdm(range(self.start, total), desc=progress, disable=progress is None, leave=False,
                        initial=self.start, total=total)

    def update(self, step: int, loss: torch.Tensor, **terms: torch.Tensor) -> None:
        """Adam on ``loss``, the EMA, the curves (``loss`` and each term) and, when due, the checkpoint."""
        optimiser_step(self.opt, loss)
        with torch.no_grad():
            for p_ema, p in zip(self.ema.parameters(), self.module.parameters()):
                p_ema.lerp_(p, 1 - self.ema_beta)
            for b_ema, b in zip(self.ema.buffers(), self.module.buffers()):
                b_ema.copy_(b)
        for name, value in {"loss": loss, **terms}.items():
            self.log.setdefault(name, []).append(float(value.detach()))
        done = step + 1
        if self.state and (done % self.checkpoint_every == 0 or done == self.total):
            self.state.save(step=done, log=self.log, generator=self.rng)

    def finish(self) -> tuple[nn.Module, dict]:
        """The EMA module and the curves."""
        return self.ema, self.log
