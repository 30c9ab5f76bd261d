"""Sec. 3.4's tri-plane analysis: swap one of G's three feature planes between two heads and
measure how far the render and the depth move towards the other head.

For heads a and b with planes (P_0, P_1, P_2) and one plane k of a replaced by b's, at the same
camera:

    image moved  = |I(a with b's P_k) - I(a)|_1 / |I(b) - I(a)|_1
    depth moved  = 1 - Chamfer(X(a with b's P_k), X(b)) / Chamfer(X(a), X(b))

where X is the render's depth lifted to 3D points (rays through the pixels the head covers) and
Chamfer the symmetric mean nearest-point distance. 1 is "completely b's", 0 "unchanged". The
paper reports 80-90% for the front plane (x, y) and 20-30% for the others. Images are G's neural
renders (``image_raw``): the planes' own output, before super-resolution (which also reads w).

    moved = swap_planes(G, ws_a, ws_b, labels)   # "image", "depth": (3, N, V); the renders beside them
"""
from __future__ import annotations

import torch

from portraitlib import cameras
from portraitlib.nets.triplane import TriPlaneGenerator

OPAQUE = 0.5
"""A pixel belongs to the head when its accumulated opacity exceeds this."""


def depth_points(depth: torch.Tensor, opacity: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
    """The 3D points (P_i, 3) of each render's opaque pixels: ``depth`` (N, 1, r, r) ray distances
    along the rays of cameras ``labels`` (N, 25), ``opacity`` (N, 1, r, r)."""
    cam2world, intrinsics = cameras.split_labels(labels.to(depth))
    origins, dirs = cameras.rays(cam2world, depth.shape[-1], intrinsics=intrinsics)
    points = origins + dirs * depth.flatten(1)[..., None]
    keep = opacity.flatten(1) > OPAQUE
    return [p[k] for p, k in zip(points, keep)]


def chamfer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Symmetric mean nearest-point distance between point sets a (P, 3) and b (Q, 3); NaN when
    either is empty (a render with no opaque pixel)."""
    if not len(a) or not len(b):
        return a.new_tensor(float("nan"))  # on the points' device, stacked with the others
    d = torch.cdist(a, b)
    return (d.min(1).values.mean() + d.min(0).values.mean()) / 2


@torch.no_grad()
def swap_planes(generator: TriPlaneGenerator, ws_a: torch.Tensor, ws_b: torch.Tensor,
                labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """For pairs of heads (codes ws_a, ws_b: (N, num_ws, w_dim)) seen from cameras ``labels``
    (V, 25): how far swapping each plane k of a for b's moves a's render (``image``) and depth
    (``depth``) towards b's, each (3, N, V), 0 = unchanged, 1 = b's (depth NaN where a render
    covers no pixel); and the renders ``raw`` (5, N, V, 3, r, r) in [0, 1]
    and ``depth_map`` (5, N, V, 1, r, r) of a, b and a with each of b's planes."""
    device = next(generator.parameters()).device
    n, v = len(ws_a), len(labels)
    views = labels.to(device).repeat(n, 1)

    def render(planes: torch.Tensor, ws: torch.Tensor) -> dict[str, torch.Tensor]:
        out = generator.synthesis(ws.repeat_interleave(v, 0), views, deterministic=True, return_weights=True,
                                  planes=planes.repeat_interleave(v, 0))
        r = out["image_depth"].shape[-1]
        return {"image": out["image_raw"], "depth": out["image_depth"],
                "opacity": out["weights"].sum(-2).reshape(len(views), 1, r, r)}

    ws_a, ws_b = ws_a.to(device), ws_b.to(device)
    planes_a, planes_b = generator.planes(ws_a), generator.planes(ws_b)
    a, b = render(planes_a, ws_a), render(planes_b, ws_b)
    points_a, points_b = depth_points(a["depth"], a["opacity"], views), depth_points(b["depth"], b["opacity"], views)
    apart = (b["image"] - a["image"]).abs().flatten(1).mean(1)
    base = torch.stack([chamfer(p, q) for p, q in zip(points_a, points_b)])
    moved = {"image": [], "depth": []}
    seen = [a, b]
    for k in range(3):
        planes = planes_a.clone()
        planes[:, k] = planes_b[:, k]
        s = render(planes, ws_a)
        seen.append(s)
        moved["image"].append(((s["image"] - a["image"]).abs().flatten(1).mean(1) / apart.clamp_min(1e-8)).view(n, v))
        points_s = depth_points(s["depth"], s["opacity"], views)
        left = torch.stack([chamfer(p, q) for p, q in zip(points_s, points_b)])
        moved["depth"].append((1 - left / base.clamp_min(1e-8)).view(n, v))
    return {k: torch.stack(m).cpu() for k, m in moved.items()} | {
        "raw": ((torch.stack([x["image"] for x in seen]) + 1) / 2).clamp(0, 1).cpu().unflatten(1, (n, v)),
        "depth_map": torch.stack([x["depth"] for x in seen]).cpu().unflatten(1, (n, v))}
