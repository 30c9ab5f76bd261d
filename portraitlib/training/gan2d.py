"""Training a 2D StyleGAN2: from scratch (the source generator S) or few-shot transfer (S -> S_t).

    G, D = build_2d(config)
    G_ema, log = train_2d(G, D, images, settings=TrainSettings(steps=2000, batch=16), seed=0)

The recipe: non-saturating logistic loss, lazy R1 on reals, Adam (0, 0.99), an EMA copy of G,
x-flips of the reals, and DiffAugment for small sets. ``evaluate`` (G_ema -> score, lower is
better) is called every ``eval_every`` steps; the best-scoring EMA weights are returned (early
stopping, AgileGAN's "agile" training). A checkpoint path makes the run resumable.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from portraitlib.device import draw_batch
from portraitlib.distributed import optimiser_step, shard
from portraitlib.losses import nonsaturating_d, nonsaturating_g, r1_penalty
from portraitlib.nets.discriminators import Discriminator
from portraitlib.nets.encoders import mean_w, sample_zplus, ws_from_zplus
from portraitlib.nets.stylegan2 import StyleGAN2Generator
from portraitlib.training.augment import diff_augment
from portraitlib.training.gan_core import GANCore, GANSettings


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
    conv_clamp: float | None = None
    """Clamp of every conv output in G and D (the official FFHQ models: 256; ours: none)."""
    mbstd_group_size: int | None = 4
    """D's minibatch-stddev group (the official models record theirs)."""
    direct_resolution: int = 0
    """Not in the official network: the block resolution after which a direct linear path from w
    adds to G's features (0: none). The mini world's S_world has one at 16 (``StyleGAN2Generator``)."""
    mapping_lr_multiplier: float = 0.01
    """Learning-rate multiplier of G's mapping layers (StyleGAN2's 0.01)."""
    normalize_z: bool = True
    """Whether G's mapping divides z by its RMS (StyleGAN2's; a world code is taken as it is)."""
    z_skip: bool = False
    """Whether G's mapping adds z to the first z_dim numbers of w (not in the official network)."""


@dataclass(frozen=True)
class TrainSettings(GANSettings):
    """How long and how to train a 2D StyleGAN2."""

    batch: int = 16
    """Images per step."""
    lr: float = 0.0025
    """Adam learning rate of G and D."""
    augment: bool = False
    """DiffAugment on D's inputs (for few-shot sets)."""
    freeze_mapping: bool = False
    """Keep the mapping network fixed, so latent codes (and an encoder into them) keep their
    meaning while the synthesis network adapts (few-shot transfer)."""
    freeze_noise: bool = False
    """Keep the synthesis layers' noise strengths fixed. In few-shot transfer S_t is read with the
    constant noise buffers, and with 20 exemplars G otherwise learns to scale them into one texture
    shared by every face that fools D (issue #26)."""
    zplus_prior: bool = False
    """Draw fakes from the multi-resolution prior (an independent z per layer) instead of one z
    for all layers. Ignored when ``train_2d`` is given a ``latents`` sampler."""
    checkpoint_every: int = 200
    """Steps between resumable checkpoints (when a path is given)."""


def build_2d(config: GAN2DConfig) -> tuple[StyleGAN2Generator, Discriminator]:
    """A fresh generator and discriminator of this size."""
    g = StyleGAN2Generator(z_dim=config.z_dim, w_dim=config.w_dim, img_resolution=config.resolution,
                           channel_base=config.channel_base, channel_max=config.channel_max,
                           mapping_layers=config.mapping_layers, conv_clamp=config.conv_clamp,
                           direct_resolution=config.direct_resolution,
                           mapping_lr_multiplier=config.mapping_lr_multiplier, normalize_z=config.normalize_z,
                           z_skip=config.z_skip)
    d = Discriminator(img_resolution=config.resolution, channel_base=config.channel_base,
                      channel_max=config.channel_max, conv_clamp=config.conv_clamp,
                      mbstd_group_size=config.mbstd_group_size)
    return g, d


def train_2d(generator: StyleGAN2Generator, discriminator: Discriminator, images: torch.Tensor, *,
             settings: TrainSettings, seed: int, evaluate: Callable[[StyleGAN2Generator], float] | None = None,
             checkpoint: Path | None = None, progress: str | None = None,
             latents: Callable[[int, torch.Generator], torch.Tensor] | None = None) -> tuple[StyleGAN2Generator, dict]:
    """Train on images (N, 3, R, R) in [0, 1] (on any device: batches move to the networks'); return
    the EMA generator and the log (``d_loss``, ``g_loss``, ``r1`` per step; ``eval`` as [step,
    score]; ``best_step``).

    ``latents(n, rng)`` -> z+ (n, num_ws, z_dim) draws the codes of the fakes (e.g. inverted real
    photos: AgileGAN's inversion-consistent transfer); by default they come from the Gaussian prior."""
    g_params = [p for name, p in generator.named_parameters()
                if not (settings.freeze_mapping and name.startswith("mapping."))
                and not (settings.freeze_noise and name.endswith(".noise_strength"))]
    core = GANCore.of(generator, discriminator, settings, seed=seed, log_keys=("d_loss", "g_loss", "r1"),
                      evaluate=evaluate, checkpoint=checkpoint, generator_params=g_params)
    rng = core.rng
    augment = (lambda x: diff_augment(x, generator=rng)) if settings.augment else (lambda x: x)

    def sample_fakes():
        zplus = shard(latents(settings.batch, rng) if latents is not None else sample_zplus(
            settings.batch, num_ws=generator.num_ws, z_dim=generator.z_dim, shared=not settings.zplus_prior,
            generator=rng))
        return generator.synthesis(ws_from_zplus(generator.mapping, zplus), noise_mode="random")

    for step in core.steps(settings.steps, progress=progress):
        real = draw_batch(images, settings.batch, rng)[0] * 2 - 1
        flip = shard(torch.rand(settings.batch, generator=rng, device=rng.device)) < 0.5
        real = torch.where(flip[:, None, None, None], real.flip(-1), real)

        with torch.no_grad(), core.autocast():
            fake = sample_fakes()
        with core.autocast():
            d_loss = nonsaturating_d(discriminator(augment(real)), discriminator(augment(fake)))
        r1 = core.zero()
        if step % settings.r1_every == 0:
            real_r = real.detach().requires_grad_(True)
            r1 = r1_penalty(discriminator(augment(real_r)), [real_r])
            d_loss = d_loss + r1 * (settings.r1_gamma / 2) * settings.r1_every
        optimiser_step(core.opt_d, d_loss)

        with core.autocast():
            g_loss = nonsaturating_g(discriminator(augment(sample_fakes())))
        optimiser_step(core.opt_g, g_loss)
        core.end_step(step, d_loss=d_loss, g_loss=g_loss, r1=r1)
    g_ema, log = core.finish()
    with torch.no_grad():  # the mean w (truncation, W+ encoders) of the weights returned
        g_ema.mapping.w_avg.copy_(mean_w(g_ema))
    return g_ema, log
