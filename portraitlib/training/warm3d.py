"""A z-space VAE encoder for a tri-plane generator, and the supervised warm start it allows on the world.

    enc = HierarchicalVAEEncoder(img_resolution=64, num_ws=1, z_dim=G.config.z_dim)
    enc, log = train_vae_3d(enc, G, images, labels, depth=depth, seed=0,
                            settings=VAE3DSettings(steps=1500, generator_lr=1e-3))
    ws = encode_3d(enc, G, images)        # (N, 14, w_dim): G.mapping(mu, frontal camera)

One step: photos x (mirrored at random, labels mirrored) -> posterior (mu, logvar) of one z per
photo -> z = mu + sigma * eps -> ws = G.mapping(z, c') with c' the photo's camera or, with
``swap_probability``, another photo's (EG3D's pose-conditioning swap) -> G.synthesis(ws, c) at the
photo's own camera. Loss: L1 on the final and the raw image, ``depth_weight`` * L1 to the true depth
(the world knows it; leave ``depth`` out elsewhere), ``perceptual_weight`` * LPIPS and
``kl_weight`` * KL. With ``generator_lr > 0`` G learns too: a supervised warm start whose prior
samples G(z ~ N(0, I)) are already heads, since the KL keeps the codes it learns from Gaussian.
With G frozen it is a z-space inversion encoder (the AgileGAN-EG3D baseline's kind).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from portraitlib import cameras
from portraitlib.device import draw_batch
from portraitlib.distributed import shard
from portraitlib.nets.encoders import HierarchicalVAEEncoder
from portraitlib.nets.triplane import TriPlaneGenerator, swap_conditioning
from portraitlib.training.inversion import EncoderTrainingSettings, encoder_training, update
from portraitlib.training.eg3d import raw_like


@dataclass(frozen=True)
class VAE3DSettings(EncoderTrainingSettings):
    """How the z-space encoder (and optionally its tri-plane generator) is trained."""

    batch: int = 4
    """Photos per step."""
    kl_weight: float = 1e-3
    """Weight of the KL divergence (summed over z's dimensions) to N(0, I)."""
    depth_weight: float = 1.0
    """Weight of the L1 to the true depth (ray distance), when depth is given."""
    swap_probability: float = 0.5
    """Chance that the mapping is conditioned on another photo's camera."""


def frontal_labels(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, 25) labels of the frontal camera: what codes of photos are mapped with at inference."""
    zeros = torch.zeros(n, device=device)
    return cameras.labels_from_angles(zeros, zeros)


@torch.no_grad()
def encode_3d(encoder: HierarchicalVAEEncoder, generator: TriPlaneGenerator, images: torch.Tensor, *,
              batch: int = 64) -> torch.Tensor:
    """ws (N, num_ws, w_dim) of photos (N, 3, R, R) in [0, 1]: the posterior mean z through
    ``generator``'s mapping, conditioned on the frontal camera. A fine-tuned copy of G maps the
    same z to its own (stylized) codes, as Toonify and AgileGAN use a z-space inversion."""
    encoder.eval()
    mu = torch.cat([encoder(images[i:i + batch])[0][:, 0] for i in range(0, len(images), batch)])
    return generator.mapping(mu, frontal_labels(len(mu), mu.device))


def train_vae_3d(encoder: HierarchicalVAEEncoder, generator: TriPlaneGenerator, images: torch.Tensor,
                 labels: torch.Tensor, *, settings: VAE3DSettings, seed: int, depth: torch.Tensor | None = None,
                 perceptual: nn.Module | None = None, checkpoint: Path | None = None,
                 progress: str | None = None) -> tuple[HierarchicalVAEEncoder, dict]:
    """Train ``encoder`` (one z per photo: ``num_ws=1``) on photos (N, 3, R, R) in [0, 1] with labels
    (N, 25) and, optionally, true depth (N, 1, R, R). Returns the encoder (eval) and the log:
    per-step ``loss``, ``l1``, ``depth``, ``perceptual``, ``kl``."""
    if encoder.num_ws != 1:
        raise ValueError(f"the z-space encoder gives one z per photo (num_ws=1), not {encoder.num_ws}")
    if len(images) != len(labels) or (depth is not None and len(depth) != len(images)):
        raise ValueError("images, labels and depth must have one row per photo")
    rng, opt, state, start, log = encoder_training(encoder, generator, lr=settings.lr, generator_lr=settings.generator_lr,
                                                   checkpoint=checkpoint, seed=seed,
                                                   log_keys=("loss", "l1", "depth", "perceptual", "kl"))
    raw_res = generator.config.neural_rendering_resolution
    near, far = generator.config.ray_start, generator.config.ray_end
    encoder.train()
    for step in tqdm(range(start, settings.steps), desc=progress, disable=progress is None, leave=False,
                     initial=start, total=settings.steps):
        x, idx = draw_batch(images, settings.batch, rng)
        c = labels[idx.to(labels.device)].to(x.device)
        flip = shard(torch.rand(settings.batch, generator=rng, device=rng.device)) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        c = torch.where(flip[:, None], cameras.mirror_labels(c), c)
        mu, logvar = encoder(x)
        z = HierarchicalVAEEncoder.sample(mu, logvar, generator=rng)[:, 0]
        ws = generator.mapping(z, swap_conditioning(c, probability=settings.swap_probability, generator=rng))
        out = generator.synthesis(ws, c, generator=rng)
        target = x * 2 - 1
        l1 = (out["image"] - target).abs().mean() + (out["image_raw"] - raw_like(target, raw_res)).abs().mean()
        dep = x.new_zeros(())
        if depth is not None:
            d = depth[idx.to(depth.device)].to(x.device)
            d = torch.where(flip[:, None, None, None], d.flip(-1), d).float().clamp(near, far)
            dep = (out["image_depth"] - raw_like(d, raw_res)).abs().mean()
        lp = perceptual((out["image"] + 1) / 2, x).mean() if perceptual is not None else x.new_zeros(())
        kl = HierarchicalVAEEncoder.kl(mu, logvar).mean()
        loss = l1 + settings.depth_weight * dep + settings.perceptual_weight * lp + settings.kl_weight * kl
        update(opt, loss, log=log, terms={"loss": loss, "l1": l1, "depth": dep, "perceptual": lp, "kl": kl},
               step=step, last=settings.steps, settings=settings, state=state, rng=rng)
    generator.requires_grad_(False)
    return encoder.eval(), log
