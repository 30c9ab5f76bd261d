"""How 3D-consistent renders are: depth reprojection between two views, identity across views.

    err = reprojection_error(depth_a, labels_a, depth_b, labels_b, mask_a=opacity_a > 0.5)

A surface point seen at pixel p of view A (ray distance ``depth_a[p]``) is moved into view B; if B
sees the same surface, B's ray distance at the projected pixel equals the point's distance from
B's camera. For a consistent scene the error is near zero except where B sees an occluder; the
world's own depth gives that floor.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from portraitlib import cameras


def surface_points(depth: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """World points (N, r*r, 3) at ray distance ``depth`` (N, 1, r, r) from cameras ``labels`` (N, 25)."""
    cam2world, _ = cameras.split_labels(labels)
    origins, dirs = cameras.rays(cam2world.float(), depth.shape[-1])
    return origins + depth.flatten(2).transpose(1, 2).float() * dirs


def reprojection_error(depth_a: torch.Tensor, labels_a: torch.Tensor, depth_b: torch.Tensor, labels_b: torch.Tensor,
                       *, mask_a: torch.Tensor, mask_b: torch.Tensor | None = None) -> dict[str, float]:
    """Depth reprojection from view A to view B, over A's foreground pixels (``mask_a`` (N, 1, r, r),
    bool) that land inside B's image (and on B's foreground, if ``mask_b`` is given).

    Returns ``median`` and ``mean`` absolute error (world units; the head is about 0.5 wide) and
    ``fraction`` of A's foreground pixels that were compared."""
    points = surface_points(depth_a, labels_a)
    cam2world_b, _ = cameras.split_labels(labels_b)
    uv, _ = cameras.project(points, cam2world_b.float())
    expected = (points - cam2world_b[:, None, :3, 3].float()).norm(dim=-1)
    grid = (uv * 2 - 1).unsqueeze(1)  # (N, 1, P, 2): x = column, y = row; pixel centres as the rays
    seen = F.grid_sample(depth_b.float(), grid, mode="bilinear", align_corners=False).flatten(1)
    valid = mask_a.flatten(1) & (uv > 0).all(-1) & (uv < 1).all(-1)
    if mask_b is not None:
        valid &= F.grid_sample(mask_b.float(), grid, mode="nearest", align_corners=False).flatten(1) > 0.5
    err = (seen - expected).abs()[valid]
    if err.numel() == 0:
        raise ValueError("no foreground pixel of view A lands inside view B")
    return {"median": err.median().item(), "mean": err.mean().item(),
            "fraction": valid.sum().item() / max(mask_a.sum().item(), 1)}


def yaw_labels(yaws: list[float] | torch.Tensor, *, pitch: float = 0.0) -> torch.Tensor:
    """(len(yaws), 25) labels of orbit cameras at these yaws (degrees)."""
    yaws = torch.as_tensor(yaws, dtype=torch.float32)
    return cameras.labels_from_angles(yaws, torch.full_like(yaws, pitch))


def opacity(weights: torch.Tensor, resolution: int) -> torch.Tensor:
    """(N, 1, r, r) accumulated opacity from the volume renderer's ray weights (N, r*r, S, 1)."""
    return weights.sum(-2).reshape(len(weights), 1, resolution, resolution)
