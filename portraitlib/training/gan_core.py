"""What the 2D (StyleGAN2) and 3D (EG3D) GAN loops share: seeded RNG on the networks' device,
Adam for G and D (D's adjusted for lazy R1, as StyleGAN2 does), the EMA copy of G, early
stopping on ``evaluate`` (lower is better; the best EMA weights come back), curves, and a
resumable checkpoint that holds the best weights too, so an interrupted run returns what an
uninterrupted one would.

    core = GANCore(G, D, seed=0, lr=0.002, r1_every=16, batch=4, ema_half_life=500,
                   log_keys=("d_loss", "g_loss"), evaluate=kid, eval_every=50, checkpoint=path)
    for step in core.steps(total, progress="G"):
        ...  # one D and one G update, drawing from core.rng
        core.end_step(step, d_loss=d_loss, g_loss=g_loss)
    G_ema, log = core.finish(keep_best=True)
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch
from torch import nn
from tqdm.auto import tqdm

from portraitlib.device import device_of, seeded_generator
from portraitlib.training.checkpoint import TrainingCheckpoint


@dataclass(frozen=True)
class GANSettings:
    """What the 2D and 3D GAN loops share; each loop's settings add its own fields."""

    steps: int
    """Optimiser steps (one D and one G update each)."""
    batch: int = 4
    """Images per step."""
    lr: float = 0.002
    """Adam learning rate of G and D."""
    r1_gamma: float = 1.0
    """R1 weight (applied as gamma / 2 every ``r1_every`` steps, scaled by the interval)."""
    r1_every: int = 16
    """Lazy R1 interval."""
    ema_half_life: float = 500.0
    """Images after which the EMA weight of old parameters halves (StyleGAN2's ema_kimg, in images)."""
    eval_every: int = 0
    """Steps between calls of ``evaluate`` (0: never); the starting weights are scored too."""
    select_from: int = 0
    """First step early stopping may return: the scores before it are recorded, never chosen (a
    few-shot transfer must move G before it may stop; issue #26: KID to 20 oil-painting or
    sculpture exemplars was lowest at step 0, so S_t was S itself)."""
    checkpoint_every: int = 100
    """Steps between resumable checkpoints (when a path is given)."""
    bf16: bool = False
    """Run G's and D's forward passes of the losses under bf16 autocast on CUDA (the profile's
    ``precision``); R1, the density regulariser, EMA and the optimisers stay in fp32. No effect on
    other devices."""

    def __post_init__(self):
        if not 0 <= self.select_from <= self.steps:
            raise ValueError(f"select_from must lie in [0, steps = {self.steps}], got {self.select_from}")
        if self.eval_every > 0 and self.steps // self.eval_every * self.eval_every < self.select_from:
            raise ValueError(f"no scored step (every {self.eval_every} of {self.steps}) lies at or after select_from = "
                             f"{self.select_from}: early stopping could choose none")


class GANCore:
    """The shared state of one GAN training run; see the module docstring. Adam's ``betas`` are
    StyleGAN2's (0, 0.99) unless a method gives its own; D's are raised to the lazy-R1 ratio."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, *, seed: int, lr: float, r1_every: int,
                 batch: int, ema_half_life: float, log_keys: tuple[str, ...],
                 evaluate: Callable[[nn.Module], float] | None = None, eval_every: int = 0, select_from: int = 0,
                 checkpoint: Path | None = None, checkpoint_every: int = 100,
                 generator_params: Iterable[nn.Parameter] | None = None, bf16: bool = False,
                 betas: tuple[float, float] = (0.0, 0.99)):
        self.generator, self.discriminator = generator, discriminator
        self.device = device_of(generator)
        self.bf16 = bf16 and self.device.type == "cuda"
        self.rng = seeded_generator(seed, self.device)
        torch.manual_seed(seed)
        self.g_ema = copy.deepcopy(generator).eval().requires_grad_(False)
        params = list(generator.parameters()) if generator_params is None else list(generator_params)
        self.opt_g = torch.optim.Adam(params, lr=lr, betas=betas, eps=1e-8)
        ratio = r1_every / (r1_every + 1)
        self.opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr * ratio,
                                      betas=(betas[0] ** ratio, betas[1] ** ratio), eps=1e-8)
        self.ema_beta = 0.5 ** (batch / max(ema_half_life, 1e-8))
        self.evaluate, self.eval_every, self.checkpoint_every = evaluate, eval_every, checkpoint_every
        self.select_from = select_from
        self.state = TrainingCheckpoint(checkpoint, modules={"G": generator, "D": discriminator, "G_ema": self.g_ema},
                                        optimizers={"G": self.opt_g, "D": self.opt_d}) if checkpoint else None
        self.start, log, self.best = self.state.restore(generator=self.rng) if self.state else (0, {}, None)
        self.log = log or {**{k: [] for k in log_keys}, "eval": [], "best_step": None}
        self.total = 0

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast of the forward passes when the settings ask for it on CUDA, else nothing."""
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()

    @classmethod
    def of(cls, generator: nn.Module, discriminator: nn.Module, settings: GANSettings, *, seed: int,
           log_keys: tuple[str, ...], **options) -> "GANCore":
        """The core of a run with ``settings`` (``options``: evaluate, checkpoint, generator_params)."""
        return cls(generator, discriminator, seed=seed, lr=settings.lr, r1_every=settings.r1_every,
                   batch=settings.batch, ema_half_life=settings.ema_half_life, log_keys=log_keys,
                   eval_every=settings.eval_every, select_from=settings.select_from,
                   checkpoint_every=settings.checkpoint_every, bf16=settings.bf16, **options)

    def zero(self) -> torch.Tensor:
        """A 0-d zero on the training device (for loss terms that are off this step)."""
        return torch.zeros((), device=self.device)

    def steps(self, total: int, *, progress: str | None = None) -> Iterator[int]:
        """The step numbers still to run (all of them, or those after a resumed checkpoint); scores
        the starting weights first on a fresh run."""
        self.total = total
        if self.scoring and self.start == 0:
            self._score(0)
        yield from tqdm(range(self.start, total), desc=progress, disable=progress is None, leave=False,
                        initial=self.start, total=total)

    @property
    def scoring(self) -> bool:
        return self.evaluate is not None and self.eval_every > 0

    def _score(self, step: int) -> None:
        """``evaluate`` gives a score, or a dict with a ``score`` and diagnostics, which are kept
        in ``log["evaluations"]`` (and so survive a resume)."""
        result = self.evaluate(self.g_ema)
        if isinstance(result, dict):
            self.log.setdefault("evaluations", []).append(result)
            result = result["score"]
        value = float(result)
        self.log["eval"].append([step, value])
        if step >= self.select_from and value <= min(s for t, s in self.log["eval"] if t >= self.select_from):
            self.log["best_step"], self.best = step, copy.deepcopy(self.g_ema.state_dict())

    @torch.no_grad()
    def _update_ema(self) -> None:
        for p_ema, p in zip(self.g_ema.parameters(), self.generator.parameters()):
            p_ema.lerp_(p, 1 - self.ema_beta)
        for b_ema, b in zip(self.g_ema.buffers(), self.generator.buffers()):
            b_ema.copy_(b)

    def end_step(self, step: int, **values: torch.Tensor) -> None:
        """After both updates of ``step``: EMA, curves (one value per key), scoring, checkpoint."""
        self._update_ema()
        for name, value in values.items():
            self.log[name].append(value.item())
        done = step + 1
        if self.scoring and done % self.eval_every == 0:
            self._score(done)
        if self.state and (done % self.checkpoint_every == 0 or done == self.total):
            self.state.save(step=done, log=self.log, generator=self.rng, best=self.best)

    def finish(self, *, keep_best: bool = True) -> tuple[nn.Module, dict]:
        """The EMA generator (the best-scoring weights with ``keep_best`` when scoring) and the log."""
        if keep_best and self.scoring and self.best is not None:
            self.g_ema.load_state_dict(self.best)
        return self.g_ema, self.log
