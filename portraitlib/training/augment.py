"""Differentiable augmentation (DiffAugment: colour, translation, cutout) for GANs trained on a
few images: real and fake images are augmented the same way before the discriminator."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def diff_augment(x: torch.Tensor, *, generator: torch.Generator | None = None,
                 translation: float = 0.125, cutout: float = 0.5) -> torch.Tensor:
    """Augment images (N, C, H, W) in [-1, 1]: brightness, saturation, contrast, a random shift of
    up to ``translation`` of the size (zero padded) and one square cutout of ``cutout`` of it."""
    n, _, h, w = x.shape

    def rand(*shape):
        return torch.rand(*shape, generator=generator, device=x.device).to(x)

    x = x + (rand(n, 1, 1, 1) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (rand(n, 1, 1, 1) * 2) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    x = (x - mean) * (rand(n, 1, 1, 1) + 0.5) + mean
    if translation > 0:
        shift = (rand(n, 2) * 2 - 1) * translation * 2  # in grid units ([-1, 1] spans the image)
        theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = 1
        theta[:, :, 2] = shift
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    if cutout > 0:
        size = int(h * cutout + 0.5), int(w * cutout + 0.5)
        cy = (rand(n) * (h + 1 - size[0] % 2)).long()
        cx = (rand(n) * (w + 1 - size[1] % 2)).long()
        ys = torch.arange(h, device=x.device).view(1, h, 1)
        xs = torch.arange(w, device=x.device).view(1, 1, w)
        inside = ((ys - cy.view(n, 1, 1)).abs() < size[0] // 2 + 1) & ((xs - cx.view(n, 1, 1)).abs() < size[1] // 2 + 1)
        x = x * (~inside).unsqueeze(1).to(x)
    return x
