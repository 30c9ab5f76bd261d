"""Geometry from rendered depth: unprojection and the depth reprojection error between views."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from portraitlib.cameras import FOCAL, project, rays


def unproject(depth: torch.Tensor, cam2world: torch.Tensor, *, focal: float = FOCAL) -> torch.Tensor:
    """World points (N, R*R, 3) of a ray-distance depth map (N, 1, R, R) seen from cam2world (N, 4, 4)."""
    origins, dirs = rays(cam2world, depth.shape[-1], focal=focal)
    return origins + dirs * depth.flatten(1).unsqueeze(-1)


def reprojection_error(depth_a, mask_a, cam_a, depth_b, mask_b, cam_b, *,
                       occlusion: float = 0.03) -> dict[str, torch.Tensor]:
    """How well view A's depth agrees with view B's (both (N, 1, R, R), cameras (N, 4, 4)).

    A's foreground pixels are lifted to 3D and projected into B. Where they land on B's
    foreground and are not hidden behind B's surface (by more than ``occlusion``), the error is
    |distance from B's camera - B's depth there|. Returns the mean error (N,) and the fraction of
    A's foreground that was compared (N,).
    """
    points = unproject(depth_a, cam_a)
    uv, _ = project(points, cam_b)
    dist_b = (points - cam_b[:, None, :3, 3]).norm(dim=-1)
    grid = (uv * 2 - 1).unsqueeze(1)  # (N, 1, P, 2) for grid_sample
    sampled = F.grid_sample(depth_b, grid, mode="nearest", align_corners=False).squeeze(1).squeeze(1)
    fg_b = F.grid_sample(mask_b, grid, mode="nearest", align_corners=False).squeeze(1).squeeze(1) > 0.99
    inside = (uv >= 0).all(-1) & (uv <= 1).all(-1)
    fg_a = mask_a.flatten(1) > 0.99
    gap = dist_b - sampled
    compared = fg_a & fg_b & inside & (gap < occlusion)
    error = (gap.abs() * compared).sum(1) / compared.sum(1).clamp_min(1)
    return {"mean_error": error, "compared_fraction": compared.sum(1) / fg_a.sum(1).clamp_min(1)}
