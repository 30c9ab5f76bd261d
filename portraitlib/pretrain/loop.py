"""The one resumable loop the base models are pretrained with (G_world, S_world and the world's editor).

    net, log = fit(net, loss=lambda step, idx, rng: (loss, parts), measure=lambda net: {...},
                   steps=8000, pool_size=4096, batch=8, lr=2e-3, seed=0, checkpoint=path, eval_every=250,
                   cooldowns=((6000, 8000),))

Each step draws ``batch`` pool indices from one CPU generator and hands them, with the step and that
generator, to ``loss``; Adam steps on the result with momentum (betas 0.9, 0.99: the regression
probes of issue #26 learned faster with it than with the GAN loops' 0, 0.99) at a constant rate
(a decaying one stalled the probes of issue #19), except inside its ``cooldowns``, windows of
steps over which the rate falls linearly towards 0 (:func:`learning_rate`; G_world's held-out
identification rose from 0.53 to 0.66 over its first 4K cooled steps, issue #26). A schedule
trained on after a cooldown adds a window: the rate is back at ``lr`` where the new one starts.
A checkpoint every ``checkpoint_every`` steps holds the network, the optimiser, the generator's state and the log, so a run resumed after a
kill is bit-identical to an uninterrupted one on the same device; ``minutes`` stops a run early (the checkpoint then holds where
it stopped, and the same call continues it).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from portraitlib.device import seeded_generator
from portraitlib.training.checkpoint import TrainingCheckpoint

StepLoss = Callable[[int, torch.Tensor, torch.Generator], tuple[torch.Tensor, dict[str, float]]]
"""(step, pool indices (batch,), the run's CPU generator) -> (loss, its parts as floats)."""


def learning_rate(step: int, *, lr: float, steps: int, cooldowns: tuple[tuple[int, int], ...] = ()) -> float:
    """The rate of step ``step`` (0-based) of ``steps``: ``lr``, except inside a cooldown window
    (start, end), where it is lr * (end - step) / (end - start) (lr at ``start``, lr / (end - start)
    at ``end - 1``). Windows are ascending, disjoint and inside the schedule."""
    edge = 0
    for start, end in cooldowns:
        if not edge <= start < end <= steps:
            raise ValueError(f"cooldown windows must be ascending, disjoint and inside the {steps} steps, "
                             f"not {cooldowns}")
        edge = end
    for start, end in cooldowns:
        if start <= step < end:
            return lr * (end - step) / (end - start)
    return lr


def fit(net: nn.Module, *, loss: StepLoss, measure: Callable[[nn.Module], dict[str, float]], steps: int,
        pool_size: int, batch: int, lr: float, seed: int, checkpoint: Path, eval_every: int,
        checkpoint_every: int = 100, minutes: float | None = None, progress: str | None = None,
        phase: Callable[[int], str] = lambda step: "train",
        cooldowns: tuple[tuple[int, int], ...] = (), betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0) -> tuple[nn.Module, dict]:
    """Train ``net`` (on its device) for ``steps`` from its checkpoint, if any, until the schedule
    ends or ``minutes`` of training pass.

    Returns the net (eval, frozen) and the log: ``step``, ``seconds`` (training time of all runs,
    measuring excluded), ``curve`` (one record per ``eval_every`` steps and at the end: step, images,
    seconds, phase, the loss parts, ``measure(net)`` in eval mode) and ``done``. ``weight_decay``
    above 0 makes the optimiser AdamW (decoupled decay)."""
    rng = seeded_generator(seed)
    adam = torch.optim.AdamW if weight_decay else torch.optim.Adam
    opt = adam(net.parameters(), lr=lr, betas=betas, weight_decay=weight_decay)
    state = TrainingCheckpoint(checkpoint, modules={"net": net}, optimizers={"opt": opt})
    start, log, _ = state.restore(generator=rng)
    log = log or {"step": 0, "seconds": 0.0, "curve": [], "done": False}
    seconds = log["seconds"]
    began, measuring = time.perf_counter(), 0.0  # wall clock of this invocation; of it, measuring
    net.train().requires_grad_(True)
    bar = tqdm(range(start, steps), desc=progress, disable=progress is None, initial=start, total=steps)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, lr=lr, steps=steps, cooldowns=cooldowns)
        idx = torch.randint(pool_size, (batch,), generator=rng)
        value, parts = loss(step, idx, rng)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        done = step + 1
        bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items()}, refresh=False)
        out_of_time = minutes is not None and time.perf_counter() - began > 60 * minutes
        now = {"step": done, "seconds": seconds + time.perf_counter() - began - measuring, "done": done == steps}
        if done % eval_every == 0 or done == steps or out_of_time:
            tic = time.perf_counter()
            net.eval()
            with torch.no_grad():
                record = {"step": done, "images": done * batch, "seconds": round(now["seconds"], 1),
                          "phase": phase(step), "lr": opt.param_groups[0]["lr"], **parts, **measure(net)}
            net.train()
            measuring += time.perf_counter() - tic
            log["curve"].append(record)
            bar.write(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()))
        if done % checkpoint_every == 0 or done == steps or out_of_time:
            log |= now
            state.save(step=done, log=log, generator=rng)
        if out_of_time:
            break
    bar.close()
    return net.eval().requires_grad_(False), log
