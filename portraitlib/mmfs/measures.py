"""What notebook 11 measures of MMFS's stylizations (Table 1's columns, and the world's truth):

    images = stylize(net, photos, codes)                  # (N, 3, R, R) in [0, 1]
    spread = diversity(lpips, net, photos, seed=0)          # (N,) LPIPS between two random styles
    shares = look_shares(classifier, images)                # look -> fraction of images
"""
from __future__ import annotations

import torch

from portraitlib.mmfs.model import MMFS


def random_codes(net: MMFS, n: int, *, seed: int) -> torch.Tensor:
    """D's codes (n, num_ws, w_dim) of n style noises z ~ N(0, I) drawn from ``seed``."""
    z = torch.randn(n, net.z_dim, generator=torch.Generator(device="cpu").manual_seed(seed), device="cpu")
    return net.styles(z.to(next(net.parameters()).device))


@torch.no_grad()
def stylize(net: MMFS, photos: torch.Tensor, codes: torch.Tensor, *, batch: int = 64) -> torch.Tensor:
    """D(E(photo), codes) in [0, 1] for photos (N, 3, R, R) in [0, 1]; codes (N or 1, num_ws, w_dim)."""
    codes = codes.expand(len(photos), -1, -1) if len(codes) == 1 else codes
    return torch.cat([((net(photos[i:i + batch] * 2 - 1, codes[i:i + batch]) + 1) / 2).clamp(0, 1)
                      for i in range(0, len(photos), batch)])


@torch.no_grad()
def diversity(perceptual, net: MMFS, photos: torch.Tensor, *, seed: int) -> torch.Tensor:
    """Table 1's diversity (N,): LPIPS between two stylizations of each photo with random style noises."""
    first = stylize(net, photos, random_codes(net, len(photos), seed=seed))
    second = stylize(net, photos, random_codes(net, len(photos), seed=seed + 1))
    return perceptual(first, second)


@torch.no_grad()
def look_shares(classifier, images: torch.Tensor) -> dict[str, float]:
    """The fraction of ``images`` (N, 3, R, R) in [0, 1] the look classifier puts in each of its looks."""
    counts = torch.bincount(classifier.predict(images).cpu(), minlength=len(classifier.looks))
    return {look: (counts[i] / len(images)).item() for i, look in enumerate(classifier.looks)}
