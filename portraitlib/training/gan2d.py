"""Training a 2D StyleGAN2: from scratch (the source generator S) or few-shot transfer (S -> S_t).

    G, D = build_2d(config)
    G_ema, log = train_2d(G, D, images, settings=TrainSettings(steps=2000, batch=16), seed=0)

The recipe: non-saturating logistic loss, lazy R1 on reals, Adam (0, 0.99), an EMA copy of G,
x-flips of the reals, and DiffAugment for small sets. ``evaluate`` (G_ema -> score, lower is
better) is called every ``eval_every`` steps; the best-scoring EMA weights are returned (early
stopping, AgileGAN's "agile" training). A checkpoint path makes the run resumable.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from portraitlib.losses import nonsaturating_d, nonsaturating_g, r1_penalty
from portraitlib.nets.discriminators import Discriminator
from portraitlib.nets.encoders import mean_w, sample_zplus, ws_from_zplus
from portraitlib.nets.stylegan2 import StyleGAN2Generator
from portraitlib.training.augment import diff_augment
from portraitlib.training.checkpoint import TrainingCheckpoint


@dataclass(frozen=True)
class GAN2DConfig:
    """Sizes of a 2D StyleGAN2 pair (generator and discriminator)."""

    resolution: int = 64
    """Image side."""
    z_dim: int = 128
    """Latent size."""
    w_dim: int = 128
    """Intermediate latent size."""
    mapping_layers: int = 4
    """FC layers of the mapping network."""
    channel_base: int = 4096
    """Channels at resolution r: min(channel_base // r, channel_max)."""
    channel_max: int = 128
    """Cap on channels."""


@dataclass(frozen=True)
class TrainSettings:
    """How long and how to train."""

    steps: int
    """Optimiser steps (one D and one G update each)."""
    batch: int = 16
    """Images per step."""
    lr: float = 0.0025
    """Adam learning rate of G and D."""
    r1_gamma: float = 1.0
    """R1 weight (applied as gamma / 2 every ``r1_every`` steps, scaled by the interval)."""
    r1_every: int = 16
    """Lazy R1 interval."""
    ema_half_life: float = 500.0
    """Images after which the EMA weight of old parameters halves (StyleGAN2's ema_kimg, in images)."""
    augment: bool = False
    """DiffAugment on D's inputs (for few-shot sets)."""
    eval_every: int = 0
    """Steps between calls of ``evaluate`` (0: never); the starting weights are scored too."""
    freeze_mapping: bool = False
    """Keep the mapping network fixed, so latent codes (and an encoder into them) keep their
    meaning while the synthesis network adapts (few-shot transfer)."""
    zplus_prior: bool = False
    """Draw fakes from the multi-resolution prior (an independent z per layer) instead of one z
    for all layers. Ignored when ``train_2d`` is given a ``latents`` sampler."""
    checkpoint_every: int = 200
    """Steps between resumable checkpoints (when a path is given)."""


def build_2d(config: GAN2DConfig) -> tuple[StyleGAN2Generator, Discriminator]:
    """A fresh generator and discriminator of this size."""
    g = StyleGAN2Generator(z_dim=config.z_dim, w_dim=config.w_dim, img_resolution=config.resolution,
                           channel_base=config.channel_base, channel_max=config.channel_max,
                           mapping_layers=config.mapping_layers)
    d = Discriminator(img_resolution=config.resolution, channel_base=config.channel_base,
                      channel_max=config.channel_max)
    return g, d


def train_2d(generator: StyleGAN2Generator, discriminator: Discriminator, images: torch.Tensor, *,
             settings: TrainSettings, seed: int, evaluate: Callable[[StyleGAN2Generator], float] | None = None,
             checkpoint: Path | None = None, progress: str | None = None,
             latents: Callable[[int, torch.Generator], torch.Tensor] | None = None) -> tuple[StyleGAN2Generator, dict]:
    """Train on images (N, 3, R, R) in [0, 1]; return the EMA generator and the log
    (``d_loss``, ``g_loss``, ``r1`` per step; ``eval`` as [step, score]; ``best_step``).

    ``latents(n, rng)`` -> z+ (n, num_ws, z_dim) draws the codes of the fakes (e.g. inverted real
    photos: AgileGAN's inversion-consistent transfer); by default they come from the Gaussian prior."""
    g_rng = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    g_ema = copy.deepcopy(generator).eval().requires_grad_(False)
    g_params = [p for name, p in generator.named_parameters()
                if not (settings.freeze_mapping and name.startswith("mapping."))]
    opt_g = torch.optim.Adam(g_params, lr=settings.lr, betas=(0.0, 0.99), eps=1e-8)
    # Lazy regularisation: D's Adam parameters are adjusted for the R1 interval, as StyleGAN2 does.
    ratio = settings.r1_every / (settings.r1_every + 1)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=settings.lr * ratio, betas=(0.0, 0.99 ** ratio), eps=1e-8)
    state = TrainingCheckpoint(checkpoint, modules={"G": generator, "D": discriminator, "G_ema": g_ema},
                               optimizers={"G": opt_g, "D": opt_d}) if checkpoint else None
    start, log = state.restore(generator=g_rng) if state else (0, {})
    log = log or {"d_loss": [], "g_loss": [], "r1": [], "eval": [], "best_step": None}
    best = None
    ema_beta = 0.5 ** (settings.batch / max(settings.ema_half_life, 1e-8))
    augment = (lambda x: diff_augment(x, generator=g_rng)) if settings.augment else (lambda x: x)
    def sample_fakes():
        zplus = latents(settings.batch, g_rng) if latents is not None else sample_zplus(
            settings.batch, num_ws=generator.num_ws, z_dim=generator.z_dim, shared=not settings.zplus_prior,
            generator=g_rng)
        return generator.synthesis(ws_from_zplus(generator.mapping, zplus), noise_mode="random")

    def score(step: int) -> None:
        nonlocal best
        value = float(evaluate(g_ema))
        log["eval"].append([step, value])
        if log["best_step"] is None or value <= min(s for _, s in log["eval"]):
            log["best_step"] = step
            best = copy.deepcopy(g_ema.state_dict())

    if evaluate is not None and settings.eval_every and start == 0:
        score(0)
    for step in tqdm(range(start, settings.steps), desc=progress, disable=progress is None, leave=False,
                     initial=start, total=settings.steps):
        real = images[torch.randint(len(images), (settings.batch,), generator=g_rng)] * 2 - 1
        flip = torch.rand(settings.batch, generator=g_rng) < 0.5
        real = torch.where(flip[:, None, None, None], real.flip(-1), real)

        with torch.no_grad():
            fake = sample_fakes()
        d_loss = nonsaturating_d(discriminator(augment(real)), discriminator(augment(fake)))
        r1 = torch.zeros(())
        if step % settings.r1_every == 0:
            real_r = real.detach().requires_grad_(True)
            r1 = r1_penalty(discriminator(augment(real_r)), [real_r])
            d_loss = d_loss + r1 * (settings.r1_gamma / 2) * settings.r1_every
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

        fake = sample_fakes()
        g_loss = nonsaturating_g(discriminator(augment(fake)))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

        with torch.no_grad():
            for p_ema, p in zip(g_ema.parameters(), generator.parameters()):
                p_ema.lerp_(p, 1 - ema_beta)
            for b_ema, b in zip(g_ema.buffers(), generator.buffers()):
                b_ema.copy_(b)
        log["d_loss"].append(d_loss.item())
        log["g_loss"].append(g_loss.item())
        log["r1"].append(r1.item())
        done = step + 1
        if evaluate is not None and settings.eval_every and done % settings.eval_every == 0:
            score(done)
        if state and (done % settings.checkpoint_every == 0 or done == settings.steps):
            state.save(step=done, log=log, generator=g_rng)
    if best is not None:
        g_ema.load_state_dict(best)
    elif evaluate is not None and log["best_step"] is not None and log["best_step"] != settings.steps:
        # Resumed after the best step was taken: its weights were not kept across the interruption.
        log["best_step_weights_lost_on_resume"] = True
    with torch.no_grad():  # the mean w (truncation, W+ encoders) of the weights returned
        g_ema.mapping.w_avg.copy_(mean_w(g_ema))
    return g_ema, log
