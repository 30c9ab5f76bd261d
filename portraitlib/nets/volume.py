"""Tri-plane sampling and volume rendering as EG3D does it (stateless functions).

Shapes: N images, M rays each, D samples per ray, C feature channels. Depths are distances along
unit ray directions. Sampling is stratified + importance; pass a seeded ``generator`` (or
``deterministic=True`` for fixed mid-bin offsets and evenly spaced importance draws) to make a
render reproducible.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

PLANES_OFFICIAL = ((0, 1), (0, 2), (2, 0))
"""The released weights' projections: (x, y), (x, z), (z, x) - two distinct planes, no (y, z)."""
PLANES_CORRECTED = ((0, 1), (0, 2), (1, 2))
"""Three distinct planes (x, y), (x, z), (y, z): for new training."""


def sample_triplanes(planes: torch.Tensor, points: torch.Tensor, *, layout=PLANES_OFFICIAL,
                     box_warp: float = 1.0) -> torch.Tensor:
    """Mean of bilinear samples from three feature planes.

    planes (N, 3, C, H, W); points (N, P, 3) world coordinates -> features (N, P, C). Points are
    scaled by 2 / box_warp into grid_sample's [-1, 1] (zeros outside, align_corners False).
    """
    n, _, c, h, w = planes.shape
    coords = points * (2 / box_warp)
    grids = torch.stack([coords[..., list(axes)] for axes in layout], 1)  # (N, 3, P, 2)
    sampled = F.grid_sample(planes.reshape(n * 3, c, h, w), grids.reshape(n * 3, 1, -1, 2).to(planes.dtype),
                            mode="bilinear", padding_mode="zeros", align_corners=False)  # (N*3, C, 1, P)
    return sampled.reshape(n, 3, c, -1).mean(1).permute(0, 2, 1)


def stratified_depths(n_rays: tuple[int, int], *, near: float, far: float, samples: int,
                      generator: torch.Generator | None = None, deterministic: bool = False,
                      device=None) -> torch.Tensor:
    """(N, M, D, 1) depths: D evenly spaced values in [near, far] each jittered by up to one bin."""
    base = torch.linspace(near, far, samples, device=device).view(1, 1, samples, 1)
    base = base.expand(*n_rays, samples, 1)
    delta = (far - near) / (samples - 1)
    if deterministic:
        return base + 0.5 * delta
    return base + torch.rand(base.shape, generator=generator, device=base.device).to(base) * delta


def importance_depths(depths: torch.Tensor, weights: torch.Tensor, *, samples: int,
                      generator: torch.Generator | None = None, deterministic: bool = False) -> torch.Tensor:
    """(N, M, S, 1) new depths drawn in proportion to coarse ``weights`` (N, M, D-1, 1) of depths (N, M, D, 1).

    The weights are smoothed first (max-pool 2 then avg-pool 2, stride 1, + 0.01) and the draw is
    the inverse CDF over the coarse bins' midpoints.
    """
    n, m, d, _ = depths.shape
    z = depths.reshape(n * m, d)
    w = weights.reshape(n * m, 1, d - 1)
    w = F.avg_pool1d(F.max_pool1d(w, 2, 1, padding=1), 2, 1).squeeze(1) + 0.01  # (NM, D)
    mids = 0.5 * (z[:, 1:] + z[:, :-1])
    # D-1 midpoints as bin edges, the D-3 inner smoothed weights as the pdf; like the official
    # sampler, the last midpoint bounds no bin.
    draws = inverse_cdf(mids[:, :-1], w[:, 1:-1], samples, generator=generator, deterministic=deterministic)
    return draws.reshape(n, m, samples, 1)


def inverse_cdf(bins: torch.Tensor, weights: torch.Tensor, samples: int, *, generator=None,
                deterministic: bool = False) -> torch.Tensor:
    """Draw ``samples`` values (R, S) from the piecewise-constant pdf ``weights`` (R, B-1) on ``bins`` (R, B)."""
    weights = weights + 1e-5  # as EG3D's sampler: no bin has zero probability
    pdf = weights / weights.sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, -1)], -1)  # (R, B)
    if deterministic:
        u = torch.linspace(0, 1, samples, device=bins.device).expand(len(bins), samples).contiguous()
    else:
        u = torch.rand(len(bins), samples, generator=generator, device=bins.device).to(bins)
    idx = torch.searchsorted(cdf, u, right=True)
    below = (idx - 1).clamp_min(0)
    above = idx.clamp_max(cdf.shape[-1] - 1)
    cdf_lo, cdf_hi = cdf.gather(1, below), cdf.gather(1, above)
    bin_lo, bin_hi = bins.gather(1, below), bins.gather(1, above)
    denom = torch.where(cdf_hi - cdf_lo < 1e-5, torch.ones_like(cdf_hi), cdf_hi - cdf_lo)
    return bin_lo + (u - cdf_lo) / denom * (bin_hi - bin_lo)


def march(colors: torch.Tensor, densities: torch.Tensor, depths: torch.Tensor, *,
          density_offset: float = -1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """EG3D's MipRayMarcher on interval midpoints.

    colors (N, M, D, C), densities (N, M, D, 1) raw, depths (N, M, D, 1) sorted ->
    (features (N, M, C) scaled by 2 and shifted by -1, depth (N, M, 1), weights (N, M, D-1, 1)).
    density = softplus(raw + density_offset), alpha = 1 - exp(-density * delta),
    weight = alpha * prod(1 - alpha + 1e-10) of the samples before it.
    """
    deltas = depths[:, :, 1:] - depths[:, :, :-1]
    colors_mid = (colors[:, :, :-1] + colors[:, :, 1:]) / 2
    density_mid = F.softplus((densities[:, :, :-1] + densities[:, :, 1:]) / 2 + density_offset)
    depths_mid = (depths[:, :, :-1] + depths[:, :, 1:]) / 2
    alpha = 1 - torch.exp(-density_mid * deltas)
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :, :1]), 1 - alpha + 1e-10], 2), 2)
    weights = alpha * transmittance[:, :, :-1]
    features = (weights * colors_mid).sum(2)
    # EG3D's depth: the weighted mean, and on a ray with no weight at all (0 / 0) the far end. The
    # division is taken only where the weight is not zero, so such rays pass no NaN gradient back.
    total = weights.sum(2)
    hit = total > 0
    depth = torch.where(hit, (weights * depths_mid).sum(2) / torch.where(hit, total, torch.ones_like(total)),
                        torch.full_like(total, float("inf"))).clamp(depths.min(), depths.max())
    return features * 2 - 1, depth, weights


FIELD_CHUNK = 65536
"""Points per image evaluated at once by :func:`render_rays` (speed only; results are identical)."""

FieldFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""points (N, P, 3) -> (colors (N, P, C), raw densities (N, P, 1))."""


def render_rays(field: FieldFn, origins: torch.Tensor, directions: torch.Tensor, *, near: float, far: float,
                coarse: int, fine: int, generator: torch.Generator | None = None,
                deterministic: bool = False) -> dict[str, torch.Tensor]:
    """Volume-render rays (N, M, 3) through ``field``: ``coarse`` stratified samples, ``fine``
    importance samples, marched together. Returns features (N, M, C), depth (N, M, 1) and the
    final weights (N, M, coarse + fine - 1, 1)."""
    n, m, _ = origins.shape

    def evaluate(depths):
        points = (origins.unsqueeze(-2) + depths * directions.unsqueeze(-2)).reshape(n, -1, 3)
        # In chunks: the decoder's element-wise work runs faster on cache-sized pieces.
        parts = [field(points[:, i:i + FIELD_CHUNK]) for i in range(0, points.shape[1], FIELD_CHUNK)]
        colors, sigma = (torch.cat(p, 1) for p in zip(*parts))
        return colors.reshape(n, m, depths.shape[2], -1), sigma.reshape(n, m, depths.shape[2], 1)

    depths = stratified_depths((n, m), near=near, far=far, samples=coarse, generator=generator,
                               deterministic=deterministic, device=origins.device)
    colors, sigma = evaluate(depths)
    if fine > 0:
        _, _, weights = march(colors, sigma, depths)
        fine_depths = importance_depths(depths, weights, samples=fine, generator=generator,
                                        deterministic=deterministic).detach()
        fine_colors, fine_sigma = evaluate(fine_depths)
        depths, order = torch.sort(torch.cat([depths, fine_depths], 2), dim=2)
        colors = torch.gather(torch.cat([colors, fine_colors], 2), 2, order.expand(-1, -1, -1, colors.shape[-1]))
        sigma = torch.gather(torch.cat([sigma, fine_sigma], 2), 2, order)
    features, depth, weights = march(colors, sigma, depths)
    return {"features": features, "depth": depth, "weights": weights}
