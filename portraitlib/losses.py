"""Training losses: GAN objectives, R1, EG3D's density regularisation, path length.

Logits are the discriminator's raw outputs (N,) or (N, 1).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def nonsaturating_d(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Logistic discriminator loss: softplus(-D(real)) + softplus(D(fake)), averaged."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def nonsaturating_g(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: softplus(-D(fake)), averaged."""
    return F.softplus(-fake_logits).mean()


def hinge_d(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge discriminator loss, AgileGAN3D's Eq. (1) negated: relu(1 - D(real)) + relu(1 + D(fake))."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def hinge_g(fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge generator loss: -D(fake), averaged."""
    return -fake_logits.mean()


def r1_penalty(real_logits: torch.Tensor, inputs: list[torch.Tensor]) -> torch.Tensor:
    """Per-sample squared gradient norm of D at real inputs, summed over ``inputs`` (EG3D applies it
    to both the image and the raw image), averaged over the batch. Inputs need requires_grad;
    the caller weighs it by gamma / 2 (and by the lazy interval)."""
    grads = torch.autograd.grad(real_logits.sum(), inputs, create_graph=True)
    return sum(g.pow(2).flatten(1).sum(1) for g in grads).mean()


def density_regularization(sigma: Callable[[torch.Tensor], torch.Tensor], *, batch: int, points: int = 1000,
                           box_warp: float = 1.0, p_dist: float = 0.004, multiplicative: bool = False,
                           generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """EG3D's density smoothness term: L1 between the density at random points x in the box and at
    the points nudged by delta, ``p_dist`` Gaussian noise: x + delta (EG3D's code), or with
    ``multiplicative`` x + delta * x (free-style 3D's Eq. 6 as printed). ``sigma`` maps points
    (batch, P, 3) to densities (batch, P, 1); the caller weighs the result (EG3D: 0.25, every 4 G steps)."""
    draw = generator.device if generator is not None else device  # points are drawn there, then moved to device
    base = (torch.rand(batch, points, 3, generator=generator, device=draw) * 2 - 1) * box_warp / 2
    delta = torch.randn(base.shape, generator=generator, device=draw) * p_dist
    nudged = base + delta * base if multiplicative else base + delta
    both = torch.cat((base, nudged), 1).to(device or draw)
    values = sigma(both)
    return F.l1_loss(values[:, :points], values[:, points:])


def path_length_penalty(images: torch.Tensor, ws: torch.Tensor, mean_length: torch.Tensor,
                        *, decay: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """StyleGAN2's path length regulariser. Returns (penalty, updated running mean length)."""
    noise = torch.randn_like(images) / (images.shape[2] * images.shape[3]) ** 0.5
    (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
    lengths = grad.pow(2).sum(-1).mean(-1).sqrt() if grad.ndim == 3 else grad.pow(2).sum(-1).sqrt()
    new_mean = mean_length.lerp(lengths.mean().detach(), decay)
    return (lengths - new_mean).pow(2).mean(), new_mean
