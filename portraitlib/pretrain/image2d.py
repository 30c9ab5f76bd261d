"""S_world's pretraining: the 2D StyleGAN2 base of the style prior learns the world's photos by
regression from their codes (L1 + LPIPS-alex), on the same pool of photos as G_world.

    pool = make_pool(...)                                   # pretrain.train: photos, codes, cameras
    S, log = pretrain_2d(S, pool=pool, held_out=held_out, settings=SETTINGS_2D["mini"], seed=0,
                         checkpoint=path, judge=Measures(lpips_vgg, identity_net), perceptual=lpips_alex)

S is 2D, so its z must say where the camera is: ``image_codes`` appends the yaw and pitch
quantiles to the world code (``pretrain.world``). A sample S(z), z ~ N(0, I), is then a photo of
a world identity in a world scene at a camera inside the training ranges.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from portraitlib.cameras import angles_from_labels
from portraitlib.device import device_of
from portraitlib.nets.stylegan2 import StyleGAN2Generator
from portraitlib.pretrain.loop import fit
from portraitlib.pretrain.train import Measures
from portraitlib.pretrain.world import image_codes


@dataclass(frozen=True)
class ImagePretrainSettings:
    """How S_world is pretrained."""

    steps: int
    """Optimiser steps."""
    batch: int = 16
    """Photos per step."""
    lr: float = 2e-3
    """Adam learning rate (``loop.fit``: betas 0.9, 0.99), constant until the cooldown."""
    cooldowns: tuple[tuple[int, int], ...] = ()
    """Windows (start step, end step) over which the rate falls linearly towards 0 (``loop.learning_rate``)."""
    perceptual_weight: float = 1.0
    """Weight of LPIPS-alex beside the L1 (0: L1 alone)."""
    critic_steps: int = 500
    """Steps of the released discriminator against the finished S (``pretrain.critic``)."""
    eval_every: int = 250
    """Steps between held-out measures."""
    checkpoint_every: int = 100
    """Steps between checkpoints."""


SETTINGS_2D = {
    "smoke": ImagePretrainSettings(steps=6, batch=2, eval_every=3, checkpoint_every=2, critic_steps=2),
    "mini": ImagePretrainSettings(steps=16000, lr=4e-3, cooldowns=((12000, 16000),), eval_every=1000,
                                  critic_steps=300),
}
"""Settings per profile. mini: lr 4e-3 (the probe at 2e-3 learned slower); 12K steps: the first 6K took
25 minutes on two cores, the next 6K ran on one core beside the study's notebook 00; then 4K more
with the rate cooled to 0 (G_world's cooldown lifted its identification 0.53 -> 0.66)."""


def codes_of(data: dict[str, torch.Tensor]) -> torch.Tensor:
    """S_world's z (N, IMAGE_CODE_DIM) of a pool or held-out set (its ``z`` and camera ``labels``)."""
    return image_codes(data["z"], angles_from_labels(data["labels"]))


def regression_loss(generator: StyleGAN2Generator, z: torch.Tensor, images: torch.Tensor, *, perceptual=None,
                    perceptual_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """L1 between S(z) (N, 3, R, R) in [-1, 1] and the photos (N, 3, R, R) in [0, 1], plus
    ``perceptual_weight`` * LPIPS when ``perceptual`` is given. Returns the loss and its parts."""
    out = generator(z)
    target = images.to(out) * 2 - 1
    l1 = (out - target).abs().mean()
    parts = {"l1": l1.item()}
    if perceptual is None:
        return l1, parts
    lp = perceptual((out + 1) / 2, images.to(out)).mean()
    return l1 + perceptual_weight * lp, parts | {"perceptual": lp.item()}


@torch.no_grad()
def held_out_images_2d(generator: StyleGAN2Generator, held_out: dict[str, torch.Tensor]) -> torch.Tensor:
    """S(z) (N, 3, R, R) in [0, 1] of the held-out codes at their cameras."""
    return ((generator(codes_of(held_out).to(device_of(generator))) + 1) / 2).clamp(0, 1)


def measure_2d(generator: StyleGAN2Generator, held_out: dict[str, torch.Tensor], *, judge: Measures
               ) -> dict[str, float]:
    """S(z) of the held-out codes at their cameras against the world's true photos."""
    return judge(held_out_images_2d(generator, held_out), held_out["images"])


def pretrain_2d(generator: StyleGAN2Generator, *, pool: dict[str, torch.Tensor], held_out: dict[str, torch.Tensor],
                settings: ImagePretrainSettings, seed: int, checkpoint: Path, judge: Measures, perceptual=None,
                minutes: float | None = None, progress: str | None = None) -> tuple[StyleGAN2Generator, dict]:
    """Train S by regression with :func:`loop.fit` (resumable from ``checkpoint``, bounded by
    ``minutes``). Returns S (eval) and the log (``step``, ``seconds``, ``curve``, ``done``)."""
    if settings.perceptual_weight > 0 and perceptual is None:
        raise ValueError("these settings weigh LPIPS in the loss: pass perceptual=load_lpips('alex')")
    if pool["images"].shape[-1] != generator.img_resolution:
        raise ValueError(f"the pool's photos are {pool['images'].shape[-1]} px but S renders "
                         f"{generator.img_resolution} px: render the pool at S's side")
    z = codes_of(pool)
    device = device_of(generator)

    def loss(step: int, idx: torch.Tensor, rng: torch.Generator):
        return regression_loss(generator, z[idx].to(device), pool["images"][idx],
                               perceptual=perceptual if settings.perceptual_weight > 0 else None,
                               perceptual_weight=settings.perceptual_weight)

    return fit(generator, loss=loss, measure=lambda g: measure_2d(g, held_out, judge=judge),
               steps=settings.steps, pool_size=len(z), batch=settings.batch, lr=settings.lr,
               cooldowns=settings.cooldowns, seed=seed,
               checkpoint=checkpoint, eval_every=settings.eval_every, checkpoint_every=settings.checkpoint_every,
               minutes=minutes, progress=progress)
