"""Training a tri-plane generator (EG3D) with its dual discriminator, from scratch or by transfer.

    G, D = TriPlaneGenerator(config=configs.MINI), DiscriminatorConfig(img_resolution=64, ...).build()
    G_ema, log = train_3d(G, D, images, labels, settings=Train3DSettings(steps=500), seed=0)

One step, as EG3D's recipe: reals are x-flipped at random (their labels mirrored); fakes are
rendered at cameras drawn from the training labels, the mapping conditioned on those cameras or,
with ``swap_probability``, on another sample's (generator pose conditioning); D sees the final and
the raw image together (dual discrimination), both blurred by a sigma that fades out over
``blur_fade_images``; non-saturating loss; lazy R1 on both real images; EG3D's density
regulariser every ``density_every`` G steps; an EMA copy of G. With ``evaluate`` (G_ema -> score,
lower is better) the best-scoring weights come back (step 0 is scored too). With AgileGAN3D's
L_prior (transfer), ``images`` and ``labels`` are the style prior and its paired real cameras.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from portraitlib import cameras
from portraitlib.device import draw_batch
from portraitlib.distributed import optimiser_step, shard
from portraitlib.losses import density_regularization, nonsaturating_d, nonsaturating_g, r1_penalty
from portraitlib.nets.discriminators import DualDiscriminator, blur_sigma_at
from portraitlib.nets.triplane import TriPlaneGenerator, swap_conditioning
from portraitlib.training.gan_core import GANCore, GANSettings


@dataclass(frozen=True)
class Train3DSettings(GANSettings):
    """How long and how to train a tri-plane GAN (the paper: batch 4, lr 0.002; R1 on both the
    image and the raw image)."""

    swap_probability: float = 0.5
    """Chance that a fake's mapping is conditioned on another sample's camera (EG3D's GPC)."""
    blur_fade_images: int = 0
    """Images over which D's input blur fades from ``blur_sigma`` to 0 (0: no blur)."""
    blur_sigma: float = 10.0
    """Starting blur sigma, in pixels of the final image."""
    density_weight: float = 0.25
    """Weight of the density regulariser."""
    density_every: int = 4
    """G steps between density regularisations (0: never)."""
    keep_best: bool = True
    """Return the best-scoring EMA weights (early stopping); False: the last, the scores only logged."""
    d_conditioned: bool = True
    """D sees each image's camera label (EG3D); False: every label D sees is zeros, an unconditional
    dual discriminator (3DAvatarGAN)."""
    ray_bounds: tuple[float, float] | None = None
    """The fakes' (near, far) along each ray; None: G's config's (cameras at another distance)."""


def raw_like(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Real images (N, 3, R, R) resized to the raw rendering resolution (antialiased), as EG3D
    feeds reals to the raw branch of its dual discriminator."""
    return F.interpolate(images, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)


def train_3d(generator: TriPlaneGenerator, discriminator: DualDiscriminator, images: torch.Tensor,
             labels: torch.Tensor, *, settings: Train3DSettings, seed: int,
             evaluate: Callable[[TriPlaneGenerator], float] | None = None, checkpoint: Path | None = None,
             latents: Callable[[int, torch.Generator], torch.Tensor] | None = None,
             guide: Callable[[TriPlaneGenerator, torch.Generator], torch.Tensor] | None = None,
             fake_labels: torch.Tensor | None = None,
             regulariser: Callable[[dict, torch.Tensor], torch.Tensor] | None = None,
             progress: str | None = None) -> tuple[TriPlaneGenerator, dict]:
    """Train on images (N, 3, R, R) in [0, 1] with camera labels (N, 25), on any device (batches
    move to the networks'). ``latents(n, rng)``, if given, draws the fakes' z (n, z_dim) instead of
    the Gaussian prior. ``guide(G, rng)``, if given, is a further loss of G added at every G step
    (AgileGAN3D's L_guide). ``fake_labels`` (M, 25), if given, are the cameras fakes are rendered
    at (default: ``labels``); ``regulariser(fake, ws)``, if given, a further loss of G's fakes of the
    G step (their render dict and codes; 3DAvatarGAN's R(Delta s) and R(D)). Returns the EMA
    generator and the log (``d_loss``, ``g_loss``, ``r1``, ``density``, ``guide``, ``regulariser``
    per step; ``eval`` [step, score]; ``best_step``)."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    core = GANCore.of(generator, discriminator, settings, seed=seed, evaluate=evaluate, checkpoint=checkpoint,
                      log_keys=("d_loss", "g_loss", "r1", "density", "guide", "regulariser"))
    rng, device = core.rng, core.device
    raw_res = generator.config.neural_rendering_resolution
    cameras_of_fakes = labels if fake_labels is None else fake_labels
    seen = (lambda c: c) if settings.d_conditioned else torch.zeros_like  # the labels D is shown

    def fakes():
        c = draw_batch(cameras_of_fakes, settings.batch, rng)[0]
        c_cond = swap_conditioning(c, probability=settings.swap_probability, generator=rng)
        z = (latents(settings.batch, rng) if latents is not None
             else torch.randn(settings.batch, generator.config.z_dim, generator=rng, device=device))
        z = shard(z)
        ws = generator.mapping(z, c_cond, update_emas=True)
        return generator.synthesis(ws, c, noise_mode="random", generator=rng, ray_bounds=settings.ray_bounds), ws, c

    for step in core.steps(settings.steps, progress=progress):
        sigma = blur_sigma_at(step * settings.batch / 1000, fade_kimg=settings.blur_fade_images / 1000,
                              start_sigma=settings.blur_sigma)
        real, idx = draw_batch(images, settings.batch, rng)
        real, real_c = real * 2 - 1, labels[idx.to(labels.device)].to(device)
        flip = shard(torch.rand(settings.batch, generator=rng, device=device)) < 0.5
        real = torch.where(flip[:, None, None, None], real.flip(-1), real)
        real_c = torch.where(flip[:, None], cameras.mirror_labels(real_c), real_c)
        real_imgs = {"image": real, "image_raw": raw_like(real, raw_res)}

        with torch.no_grad(), core.autocast():
            fake, _, fake_c = fakes()
        with core.autocast():
            d_loss = nonsaturating_d(discriminator(real_imgs, seen(real_c), blur_sigma=sigma),
                                     discriminator({k: fake[k] for k in ("image", "image_raw")}, seen(fake_c),
                                                   blur_sigma=sigma))
        r1 = core.zero()
        if step % settings.r1_every == 0:
            leaves = {k: v.detach().requires_grad_(True) for k, v in real_imgs.items()}
            r1 = r1_penalty(discriminator(leaves, seen(real_c), blur_sigma=sigma), list(leaves.values()))
            d_loss = d_loss + r1 * (settings.r1_gamma / 2) * settings.r1_every
        optimiser_step(core.opt_d, d_loss)

        with core.autocast():
            fake, ws, fake_c = fakes()
            g_loss = nonsaturating_g(discriminator({k: fake[k] for k in ("image", "image_raw")}, seen(fake_c),
                                                   blur_sigma=sigma))
            regular = regulariser(fake, ws) if regulariser is not None else core.zero()
            g_loss = g_loss + regular
        density = core.zero()
        if settings.density_every and step % settings.density_every == 0:
            planes = generator.planes(ws)
            density = density_regularization(lambda p: generator.field(planes)(p)[1], batch=len(planes),
                                             box_warp=generator.config.box_warp, generator=rng)
            g_loss = g_loss + density * settings.density_weight * settings.density_every
        guide_loss = guide(generator, rng) if guide is not None else core.zero()
        g_loss = g_loss + guide_loss
        optimiser_step(core.opt_g, g_loss)
        core.end_step(step, d_loss=d_loss, g_loss=g_loss, r1=r1, density=density, guide=guide_loss,
                      regulariser=regular)
    return core.finish(keep_best=settings.keep_best)
