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


def _into_view(depth_a: torch.Tensor, labels_a: torch.Tensor, labels_b: torch.Tensor):
    """View A's surface points (ray distance ``depth_a`` (N, 1, r, r)) seen from camera B: their
    ``grid_sample`` grid in B's image (N, 1, r*r, 2), whether they fall inside it (N, r*r), and
    their distance from B's camera (N, r*r)."""
    points = surface_points(depth_a, labels_a)
    cam2world_b, _ = cameras.split_labels(labels_b)
    uv, _ = cameras.project(points, cam2world_b.float())
    expected = (points - cam2world_b[:, None, :3, 3].float()).norm(dim=-1)
    grid = (uv * 2 - 1).unsqueeze(1)  # x = column, y = row; pixel centres as the rays
    return grid, (uv > 0).all(-1) & (uv < 1).all(-1), expected


def reprojection_error(depth_a: torch.Tensor, labels_a: torch.Tensor, depth_b: torch.Tensor, labels_b: torch.Tensor,
                       *, mask_a: torch.Tensor, mask_b: torch.Tensor | None = None,
                       occlusion: float | None = None, sample: str = "bilinear") -> dict[str, float]:
    """Depth reprojection from view A to view B, over A's foreground pixels (``mask_a`` (N, 1, r, r),
    bool) that land inside B's image (and on B's foreground, if ``mask_b`` is given). With
    ``occlusion``, points that lie more than that behind B's surface (hidden from B) are not
    compared. ``sample``: how B's depth is read (``nearest`` for hard-edged true depth, whose
    bilinear reads blend the head with the far plane at its silhouette).

    Returns ``median`` and ``mean`` absolute error (world units; the head is about 0.5 wide) and
    ``fraction`` of A's foreground pixels that were compared."""
    grid, inside, expected = _into_view(depth_a, labels_a, labels_b)
    seen = F.grid_sample(depth_b.float(), grid, mode=sample, align_corners=False).flatten(1)
    valid = mask_a.flatten(1) & inside
    if mask_b is not None:
        valid &= F.grid_sample(mask_b.float(), grid, mode="nearest", align_corners=False).flatten(1) > 0.5
    if occlusion is not None:
        valid &= expected - seen < occlusion
    err = (seen - expected).abs()[valid]
    if err.numel() == 0:
        raise ValueError("no foreground pixel of view A lands inside view B")
    return {"median": err.median().item(), "mean": err.mean().item(),
            "fraction": valid.sum().item() / max(mask_a.sum().item(), 1)}


def yaw_labels(yaws: list[float] | torch.Tensor, *, pitch: float = 0.0, device: torch.device | str | None = None
               ) -> torch.Tensor:
    """(len(yaws), 25) labels of orbit cameras at these yaws (degrees), on ``device`` (default: the
    yaws' own, the CPU for a list)."""
    if device is None:
        device = yaws.device if isinstance(yaws, torch.Tensor) else "cpu"
    yaws = torch.as_tensor(yaws, dtype=torch.float32, device=device)
    return cameras.labels_from_angles(yaws, torch.full_like(yaws, pitch))


def opacity(weights: torch.Tensor, resolution: int) -> torch.Tensor:
    """(N, 1, r, r) accumulated opacity from the volume renderer's ray weights (N, r*r, S, 1)."""
    return weights.sum(-2).reshape(len(weights), 1, resolution, resolution)


def normal_map(depth: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Camera-space unit normals (N, 3, r, r) of ray-distance depth maps (N, 1, r, r), as the RGB
    convention of normal maps shows them: x right, y up, z toward the camera, each mapped to [0, 1]
    by (n + 1) / 2. From central differences of the unprojected surface."""
    n, _, r, _ = depth.shape
    cam2world, _ = cameras.split_labels(labels)
    points = surface_points(depth, labels).transpose(1, 2).reshape(n, 3, r, r)
    padded = F.pad(points, (1, 1, 1, 1), mode="replicate")
    d_col = padded[:, :, 1:-1, 2:] - padded[:, :, 1:-1, :-2]
    d_row = padded[:, :, 2:, 1:-1] - padded[:, :, :-2, 1:-1]
    normal = F.normalize(torch.cross(d_row, d_col, dim=1), dim=1)  # outward: toward the camera that sees it
    world_to_cam = cam2world[:, :3, :3].float().transpose(1, 2)
    cam = torch.einsum("nij,njhw->nihw", world_to_cam, normal)
    shown = torch.stack((cam[:, 0], -cam[:, 1], -cam[:, 2]), 1)  # OpenCV (x right, y down, z forward) -> RGB
    return (shown + 1) / 2


def warping_error(images_a: torch.Tensor, depth_a: torch.Tensor, labels_a: torch.Tensor, images_b: torch.Tensor,
                  labels_b: torch.Tensor, *, mask_a: torch.Tensor, depth_b: torch.Tensor | None = None,
                  occlusion: float = 0.05) -> dict[str, torch.Tensor]:
    """Photometric warping error between two views of N portraits: view B's image (N, 3, R, R)
    fetched where view A's surface (``depth_a`` (N, 1, r, r) ray distance, any r; ``mask_a``
    (N, 1, r, r) bool) lands in B, against A's image; mean absolute difference over the compared
    pixels, ``warped`` (N,). ``unmoved`` (N,) compares the same pixels of A with B's pixels at the
    same image positions (no motion): the error the geometry has to explain. With ``depth_b``,
    points that B sees behind an occluder (by more than ``occlusion``) are left out.

    If A and B show one surface, the geometry moves A's colours onto B's and ``warped`` is small
    (shading stays put, since lights are fixed to the head). The geometry can be the renderer's own
    or the world's true one."""
    size = images_a.shape[-1]
    if depth_a.shape[-1] != size:
        depth_a = F.interpolate(depth_a.float(), size=(size, size), mode="nearest")
        mask_a = F.interpolate(mask_a.float(), size=(size, size), mode="nearest") > 0.5
    grid, inside, expected = _into_view(depth_a, labels_a, labels_b)
    fetched = F.grid_sample(images_b.float(), grid, mode="bilinear", align_corners=False).squeeze(2)  # (N, 3, P)
    valid = mask_a.flatten(1) & inside
    if depth_b is not None:
        seen = F.grid_sample(depth_b.float(), grid, mode="bilinear", align_corners=False).flatten(1)
        valid &= (expected - seen) < occlusion
    count = valid.sum(1).clamp_min(1)
    warped = (fetched - images_a.float().flatten(2)).abs().mean(1)
    unmoved = (images_b.float() - images_a.float()).abs().mean(1).flatten(1)
    return {"warped": (warped * valid).sum(1) / count, "unmoved": (unmoved * valid).sum(1) / count}


def epipolar_image(images: torch.Tensor, *, row: int) -> torch.Tensor:
    """Fig. 8's epipolar-plane image of a yaw sweep (K, 3, R, R): image row ``row`` of each view,
    stacked top to bottom, (3, K, R). A consistent 3D object traces smooth slanted lines in it."""
    return images[:, :, row, :].permute(1, 0, 2)


@torch.no_grad()
def sweep_scores(images: torch.Tensor, labels: torch.Tensor, *, depth: torch.Tensor, mask: torch.Tensor,
                 identity_net, regressor, centre: int) -> dict[str, float]:
    """Multi-view consistency of yaw sweeps: images (N, K, 3, R, R) of N portraits from the K
    cameras ``labels`` (K, 25), sorted by yaw. ``depth`` and ``mask`` (N, K, 1, r, r): the geometry
    the views are warped with (a renderer's own depth, or the world's true one).

    Returns means over portraits: ``warp`` (:func:`warping_error` from each view to the next),
    ``warp_ratio`` (``warp`` over the same error without moving the pixels: near 1 when the
    geometry explains nothing, as for a blank or inconsistent sequence; low for a consistent one),
    ``identity_drift`` (identity distance of each view to view ``centre``), ``yaw_error`` (degrees
    between the pose regressor's yaw of each view and the camera's) and ``yaw_slope`` (the
    regressor's yaw per camera degree, fitted over the sweep: 1 when views turn as asked)."""
    n, k = images.shape[:2]
    pairs = [warping_error(images[:, i], depth[:, i], labels[i:i + 1].expand(n, -1), images[:, i + 1],
                           labels[i + 1:i + 2].expand(n, -1), mask_a=mask[:, i] > 0.5, depth_b=depth[:, i + 1])
             for i in range(k - 1)]
    warp = torch.stack([p["warped"] for p in pairs])
    still = torch.stack([p["unmoved"] for p in pairs])
    others = [i for i in range(k) if i != centre]
    drift = [identity_net.distance(images[:, i], images[:, centre]) for i in others]
    asked = cameras.angles_from_labels(labels)[:, 0]
    seen = regressor.eval()(images.flatten(0, 1))[:, 0].reshape(n, k)
    centred = asked - asked.mean()
    slope = ((seen - seen.mean(1, keepdim=True)) * centred).sum(1) / centred.square().sum()
    return {"warp": warp.mean().item(), "warp_ratio": (warp.sum(0) / still.sum(0).clamp_min(1e-8)).mean().item(),
            "identity_drift": torch.stack(drift).mean().item(),
            "yaw_error": (seen - asked).abs().mean().item(), "yaw_slope": slope.mean().item()}
