"""The two losses of G_world's pretraining: 3D distillation of the world and depth-guided rendering.

    loss, parts = distill_loss(G, z, c_cond, targets)          # no volume rendering at all
    out = guided_synthesis(G, ws, c, depth, generator=rng)    # a few samples around the true depth
    loss, parts = render_loss(out, images, depth)

``distill_loss`` asks the tri-plane field of z to hold the world's density and colour at 3D points
(:func:`portraitlib.pretrain.world.point_targets`): the backbone and decoder learn the head's shape
and look from P points per image, not from R x R x (coarse + fine) volume samples. It trains
neither the super-resolution head nor the background, which only rendered losses reach.

``guided_synthesis`` renders like ``TriPlaneGenerator.synthesis`` but, since the world knows each
ray's true depth, puts ``guided`` samples in depth +- ``spread`` and only ``stratified`` samples over
the whole ray (no coarse pass, no importance resampling).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from portraitlib import cameras
from portraitlib.nets import volume
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.pretrain.world import PointTargets


def field_density(raw: torch.Tensor) -> torch.Tensor:
    """EG3D's density of raw decoder outputs (the marcher's softplus(raw - 1))."""
    return F.softplus(raw - 1)


def distill_loss(generator: TriPlaneGenerator, z: torch.Tensor, c_cond: torch.Tensor, targets: PointTargets,
                 *, colour_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """L1 of log(1 + density) and weighted L1 of the colour (the decoder's first three channels)
    between G's field of z (N, z_dim), mapped at cameras c_cond (N, 25), and the world's
    ``targets`` (N points sets of P). Returns the loss and its parts."""
    ws = generator.mapping(z, c_cond)
    colours, raw = generator.field(generator.planes(ws))(targets.points.to(ws))
    sigma = field_density(raw[..., 0])
    density = (torch.log1p(sigma) - torch.log1p(targets.sigma.to(ws))).abs().mean()
    w = targets.colour_weight.to(ws)
    colour = ((colours[..., :3] - targets.colour.to(ws)).abs().mean(-1) * w).sum() / w.sum().clamp_min(1e-6)
    loss = density + colour_weight * colour
    return loss, {"density": density.item(), "colour": colour.item()}


def guided_depths(depth: torch.Tensor, *, near: float, far: float, stratified: int, guided: int, spread: float,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Sorted sample depths (N, M, stratified + guided, 1) of rays whose true depth is ``depth`` (N, M):
    ``stratified`` jittered over [near, far] and ``guided`` jittered over depth +- spread."""
    n, m = depth.shape
    rng_device = generator.device if generator is not None else depth.device  # draws there, then moved
    coarse = volume.stratified_depths((n, m), near=near, far=far, samples=stratified, generator=generator,
                                      device=rng_device).to(depth)
    jitter = torch.rand(n, m, guided, generator=generator, device=rng_device).to(depth)
    offsets = (torch.arange(guided, device=depth.device) + jitter) / guided
    fine = (depth.unsqueeze(-1) + spread * (2 * offsets - 1)).clamp(near, far).unsqueeze(-1)
    return torch.sort(torch.cat([coarse, fine], 2), dim=2).values


def guided_synthesis(generator: TriPlaneGenerator, ws: torch.Tensor, c: torch.Tensor, depth: torch.Tensor, *,
                     stratified: int = 8, guided: int = 8, spread: float = 0.06,
                     generator_rng: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Render codes ws (N, num_ws, w_dim) at cameras c (N, 25) with samples around the true depth
    (N, 1, R, R) (resized to G's rays r x r). Returns ``image`` (N, 3, img, img), ``image_raw``
    (N, 3, r, r) in ``synthesis``'s ranges and ``image_depth`` (N, 1, r, r), the expected ray
    depth with the ray's remaining weight on the far plane, as the world's depth has it."""
    cfg = generator.config
    r = cfg.neural_rendering_resolution
    cam2world, intrinsics = cameras.split_labels(c)
    origins, dirs = cameras.rays(cam2world.float(), r, intrinsics=intrinsics.float())
    origins, dirs = origins.to(ws), dirs.to(ws)
    true_depth = F.interpolate(depth.to(ws), size=(r, r), mode="area").flatten(1)  # (N, r*r)
    depths = guided_depths(true_depth, near=cfg.ray_start, far=cfg.ray_end, stratified=stratified, guided=guided,
                           spread=spread, generator=generator_rng)
    n, m, d, _ = depths.shape
    field = generator.field(generator.planes(ws))
    points = (origins.unsqueeze(-2) + depths * dirs.unsqueeze(-2)).reshape(n, -1, 3)
    colours, sigma = field(points)
    features, _, weights = volume.march(colours.reshape(n, m, d, -1), sigma.reshape(n, m, d, 1), depths)
    # Expected depth with the rest of the ray's weight on the far plane (the world's background
    # depth): march's own depth divides by the weights' sum, whose gradient is NaN on empty rays.
    mids = (depths[:, :, 1:] + depths[:, :, :-1]) / 2
    ray_depth = (weights * mids).sum(2) + (1 - weights.sum(2)) * cfg.ray_end
    features = features.permute(0, 2, 1).reshape(n, -1, r, r)
    raw = features[:, :3]
    image = generator.superresolution(raw, features, generator.sr_codes(ws))
    return {"image": image, "image_raw": raw, "image_depth": ray_depth.permute(0, 2, 1).reshape(n, 1, r, r)}


def render_loss(out: dict[str, torch.Tensor], images: torch.Tensor, depth: torch.Tensor, *, depth_weight: float = 1.0,
                perceptual=None, perceptual_weight: float = 0.5) -> tuple[torch.Tensor, dict[str, float]]:
    """L1 of the image and the raw image to the photos (N, 3, R, R) in [0, 1], ``depth_weight`` * L1
    of the depth to the true depth (N, 1, R, R), and optionally ``perceptual_weight`` * LPIPS."""
    target = images.to(out["image"]) * 2 - 1
    r = out["image_raw"].shape[-1]
    raw_target = F.interpolate(target, size=(r, r), mode="area")
    l1 = (out["image"] - target).abs().mean() + (out["image_raw"] - raw_target).abs().mean()
    dep = (out["image_depth"] - F.interpolate(depth.to(target), size=(r, r), mode="area")).abs().mean()
    loss = l1 + depth_weight * dep
    parts = {"l1": l1.item(), "depth": dep.item()}
    if perceptual is not None:
        lp = perceptual((out["image"] + 1) / 2, images.to(target)).mean()
        loss = loss + perceptual_weight * lp
        parts["perceptual"] = lp.item()
    return loss, parts
