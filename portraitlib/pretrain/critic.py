"""The discriminator a base model is released with: trained against the frozen, regression-pretrained
generator on the world's photos, so that few-shot transfer (S -> S_t, L_prior) starts from a D that
already tells the generator's samples from photos, as it starts from the official checkpoints' D.

    D, log = warm_critic_2d(D, S, pool=pool, steps=300, seed=0, checkpoint=path)
    D, log = warm_critic_3d(D, G, pool=pool, steps=300, seed=0, checkpoint=path)

The logistic loss with lazy R1 (every 4 steps, gamma 1), the generator's samples at z ~ N(0, I)
(world codes: every one is a head). The curve records D's accuracy on a fixed held-out batch of
photos and samples.
"""
from __future__ import annotations

from pathlib import Path

import torch

from portraitlib.device import device_of, seeded_generator
from portraitlib.losses import nonsaturating_d, r1_penalty
from portraitlib.nets.discriminators import Discriminator, DualDiscriminator
from portraitlib.nets.stylegan2 import StyleGAN2Generator
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.pretrain.loop import fit
from portraitlib.training.eg3d import raw_like

R1_EVERY, R1_GAMMA = 4, 1.0


def _accuracy(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, float]:
    return {"d_accuracy": 0.5 * ((real_logits > 0).float().mean() + (fake_logits < 0).float().mean()).item()}


def _loss(real_logits, fake_logits, step, real_leaves, logits_of):
    loss = nonsaturating_d(real_logits, fake_logits)
    parts = {"d_loss": loss.item()}
    if step % R1_EVERY == 0:
        r1 = r1_penalty(logits_of(real_leaves), real_leaves)
        loss = loss + r1 * (R1_GAMMA / 2) * R1_EVERY
        parts["r1"] = r1.item()
    return loss, parts


def warm_critic_2d(discriminator: Discriminator, generator: StyleGAN2Generator, *, pool: dict[str, torch.Tensor],
                   steps: int, seed: int, checkpoint: Path, batch: int = 16, lr: float = 2.5e-3,
                   minutes: float | None = None, progress: str | None = None) -> tuple[Discriminator, dict]:
    """D of 2D photos (N, 3, R, R) against S(z), S frozen."""
    device = device_of(discriminator)
    held = seeded_generator(seed + 1)
    probe_real = pool["images"][torch.randint(len(pool["images"]), (64,), generator=held)].to(device) * 2 - 1
    with torch.no_grad():
        probe_fake = generator(torch.randn(64, generator.z_dim, generator=held).to(device))

    def loss(step, idx, rng):
        real = (pool["images"][idx].to(device) * 2 - 1).requires_grad_(step % R1_EVERY == 0)
        with torch.no_grad():
            fake = generator(torch.randn(len(idx), generator.z_dim, generator=rng).to(device))
        return _loss(discriminator(real), discriminator(fake), step, [real], lambda leaves: discriminator(leaves[0]))

    return fit(discriminator, loss=loss, measure=lambda d: _accuracy(d(probe_real), d(probe_fake)), steps=steps,
               pool_size=len(pool["images"]), batch=batch, lr=lr, seed=seed, checkpoint=checkpoint,
               eval_every=max(steps // 4, 1), minutes=minutes, progress=progress)


def warm_critic_3d(discriminator: DualDiscriminator, generator: TriPlaneGenerator, *, pool: dict[str, torch.Tensor],
                   steps: int, seed: int, checkpoint: Path, batch: int = 8, lr: float = 2e-3,
                   minutes: float | None = None, progress: str | None = None) -> tuple[DualDiscriminator, dict]:
    """EG3D's dual D of (image, raw image) at the photos' cameras against G(z, c), G frozen."""
    device = device_of(discriminator)
    raw = generator.config.neural_rendering_resolution

    def photos(idx):
        image = pool["images"][idx].to(device) * 2 - 1
        return {"image": image, "image_raw": raw_like(image, raw)}, pool["labels"][idx].to(device)

    def samples(n, rng, c):
        with torch.no_grad():
            out = generator(torch.randn(n, generator.config.z_dim, generator=rng).to(device), c)
        return {k: out[k] for k in ("image", "image_raw")}

    held = seeded_generator(seed + 1)
    probe_idx = torch.randint(len(pool["images"]), (32,), generator=held)
    probe_real, probe_c = photos(probe_idx)
    probe_fake = samples(32, held, probe_c)

    def loss(step, idx, rng):
        real, c = photos(idx)
        if step % R1_EVERY == 0:
            real = {k: v.requires_grad_(True) for k, v in real.items()}
        fake = samples(len(idx), rng, c)
        return _loss(discriminator(real, c), discriminator(fake, c), step, list(real.values()),
                     lambda leaves: discriminator(dict(zip(("image", "image_raw"), leaves)), c))

    return fit(discriminator, loss=loss,
               measure=lambda d: _accuracy(d(probe_real, probe_c), d(probe_fake, probe_c)), steps=steps,
               pool_size=len(pool["images"]), batch=batch, lr=lr, seed=seed, checkpoint=checkpoint,
               eval_every=max(steps // 4, 1), minutes=minutes, progress=progress)
