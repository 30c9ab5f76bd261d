"""Sphere-tracing renderer of the head world: RGB, depth, mask, normals and parts, on the device
of the cameras.

Rays follow EG3D's cameras (``portraitlib.cameras.rays``). Depth is the distance along the unit
ray, like EG3D's; background pixels get the far plane. Images are in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from portraitlib.cameras import rays
from portraitlib.world.head import MATERIALS, eye_centres, eye_radius, head_parts, head_sdf
from portraitlib.world.identity import (HAIR_PALETTE, IRIS_PALETTE, LIP_PALETTE, SKIN_PALETTE,
                                        HeadParams, hue_colour, palette)
from portraitlib.world.styles import REAL, StyleSpec

NEAR, FAR = 2.25, 3.3
"""EG3D's ray range; the head lies inside it."""
_BOUND_CENTRE = torch.tensor([0.0, -0.12, -0.02])
_BOUND_RADIUS = 0.62
_HIT_EPS = 1e-3
_NEAR_ENVELOPE = 0.02


@dataclass(frozen=True)
class Scene:
    """Per-image conditions of a photo: light and background. Each field has N rows."""

    light: torch.Tensor
    """Unit direction toward the light, world space, (N, 3)."""
    ambient: torch.Tensor
    """Ambient light level, (N,)."""
    background: torch.Tensor
    """Background colour, (N, 3)."""

    @staticmethod
    def studio(n: int, *, device: torch.device | str = "cpu") -> "Scene":
        """A neutral scene: light from upper left front, grey-blue background."""
        return Scene(light=light_direction(torch.full((n,), -30.0, device=device), torch.full((n,), 30.0, device=device)),
                     ambient=torch.full((n,), 0.35, device=device),
                     background=torch.tensor([0.6, 0.65, 0.7], device=device).repeat(n, 1))

    @staticmethod
    def sample(n: int, *, generator: torch.Generator) -> "Scene":
        """Varied photo conditions: light azimuth +-70, elevation 0..55 deg, ambient 0.2..0.5,
        muted background colours (:meth:`from_uniforms` of rand(n, 6))."""
        return Scene.from_uniforms(torch.rand(n, 6, generator=generator, device=generator.device))

    @staticmethod
    def from_uniforms(u: torch.Tensor) -> "Scene":
        """The scene of uniforms u (N, >= 5) in [0, 1]: light azimuth, elevation, background hue,
        background level, ambient."""
        light = light_direction(u[:, 0] * 140 - 70, u[:, 1] * 55)
        background = hue_colour(u[:, 2], saturation=0.35, value=0.55) * 0.5 + u[:, 3:4] * 0.45
        return Scene(light=light, ambient=0.2 + 0.3 * u[:, 4], background=background.clamp(0, 1))

    def index(self, idx) -> "Scene":
        return Scene(self.light[idx], self.ambient[idx], self.background[idx])

    def to(self, device: torch.device | str) -> "Scene":
        return Scene(self.light.to(device), self.ambient.to(device), self.background.to(device))


def light_direction(azimuth: torch.Tensor, elevation: torch.Tensor) -> torch.Tensor:
    """Unit vectors (N, 3) toward a light at azimuth/elevation degrees (0, 0 = in front)."""
    a, e = torch.deg2rad(azimuth), torch.deg2rad(elevation)
    return torch.stack((torch.cos(e) * torch.sin(a), torch.sin(e), torch.cos(e) * torch.cos(a)), -1)


@dataclass(frozen=True)
class Render:
    """Rendered images of N heads at one resolution R."""

    rgb: torch.Tensor
    """(N, 3, R, R) in [0, 1]."""
    depth: torch.Tensor
    """(N, 1, R, R) distance along the ray; ``FAR`` on the background."""
    mask: torch.Tensor
    """(N, 1, R, R) in [0, 1] (fractional at edges when supersampled)."""
    normal: torch.Tensor
    """(N, 3, R, R) world-space unit normals (zero on the background)."""
    part: torch.Tensor
    """(N, 1, R, R) index into ``MATERIALS`` (-1 on the background), at full resolution only."""


def render(heads: HeadParams, cam2world: torch.Tensor, *, resolution: int = 64,
           style: StyleSpec = REAL, scene: Scene | None = None, supersample: int = 1,
           steps: int = 48) -> Render:
    """Render N heads, each from its camera (N, 4, 4), in ``style``.

    The style's geometry multipliers change the heads first; ``supersample`` renders at that
    multiple of ``resolution`` and averages down (anti-aliasing).
    """
    n = len(heads)
    if cam2world.shape != (n, 4, 4):
        raise ValueError(f"need one camera (N, 4, 4) per head; got {tuple(cam2world.shape)} for {n} heads")
    device = cam2world.device
    heads = style.apply_geometry(heads)
    scene = scene or Scene.studio(n, device=device)
    res = resolution * supersample
    origins, dirs = rays(cam2world.float(), res)
    origins, dirs = origins.reshape(-1, 3), dirs.reshape(-1, 3)
    owner = torch.arange(n, device=device).repeat_interleave(res * res)
    t, hit = _trace(origins, dirs, owner, heads, steps)

    pixels = origins.shape[0]
    colour = scene.background[owner].clone()
    if style.background is not None:
        colour[:] = torch.tensor(style.background, device=device)
    else:  # a soft vertical gradient, like a studio backdrop
        v = (torch.arange(res, dtype=torch.float32, device=device) + 0.5) / res
        colour *= (1.08 - 0.16 * v).repeat_interleave(res).repeat(n).unsqueeze(-1)
    normal = torch.zeros(pixels, 3, device=device)
    part = torch.full((pixels,), -1, dtype=torch.long, device=device)
    idx = hit.nonzero().squeeze(1)
    if idx.numel():
        points = origins[idx] + t[idx, None] * dirs[idx]
        hp = heads.index(owner[idx])
        part[idx] = head_parts(points.unsqueeze(1), hp).squeeze(1).argmin(-1)
        normal[idx] = _normals(points, hp)
        colour[idx] = _shade(points, normal[idx], dirs[idx], part[idx], hp, scene.index(owner[idx]), style)
    depth = torch.where(hit, t, torch.full_like(t, FAR))

    def image(x, channels):
        return x.reshape(n, res, res, channels).permute(0, 3, 1, 2)

    rgb, depth_img, mask = image(colour, 3), image(depth[:, None], 1), image(hit.float()[:, None], 1)
    part_img = image(part[:, None], 1)
    if style.outline_px > 0:
        rgb = _outline(rgb, depth_img, part_img, width=style.outline_px * res / 64, ink=style.outline_colour)
    normal_img = image(normal, 3)
    if supersample > 1:
        rgb, mask, normal_img = (F.avg_pool2d(x, supersample) for x in (rgb, mask, normal_img))
        depth_img = -F.max_pool2d(-depth_img, supersample)  # nearest surface in each block
        part_img = part_img[:, :, ::supersample, ::supersample]
    return Render(rgb=rgb.clamp(0, 1), depth=depth_img, mask=mask, normal=normal_img, part=part_img)


def _envelope(points):
    """Exact distance (M,) to a union of a sphere and two capsules that contains every head the
    parameter ranges and styles allow; a lower bound of the head's SDF, and cheap."""
    device = points.device
    head = (points - torch.tensor([0.0, 0.03, 0.0], device=device)).norm(dim=-1) - 0.4
    back = points.clone()
    back[:, 1] = back[:, 1].clamp(-0.5, 0.0)
    hair = (points - back * torch.tensor([0.0, 1.0, 0.0], device=device)
            - torch.tensor([0.0, 0.0, -0.1], device=device)).norm(dim=-1) - 0.24
    side = points[:, 0].clamp(-0.15, 0.15)
    body = (points - torch.stack((side, torch.full_like(side, -0.5), torch.full_like(side, -0.06)), -1)).norm(dim=-1) - 0.2
    return torch.minimum(torch.minimum(head, hair), body)


def _trace(origins, dirs, owner, heads, steps):
    """Sphere tracing from the bounding sphere; returns ray distance t (M,) and hit (M,).

    Rays first step by the distance to a cheap envelope; only rays within ``_NEAR_ENVELOPE`` of it
    pay for the full head SDF (every step counts toward ``steps`` either way)."""
    oc = origins - _BOUND_CENTRE.to(origins.device)
    b = (oc * dirs).sum(-1)
    disc = b * b - ((oc * oc).sum(-1) - _BOUND_RADIUS ** 2)
    inside = disc > 0
    root = disc.clamp_min(0).sqrt()
    t = (-b - root).clamp(NEAR, FAR)
    t_exit = (-b + root).clamp(NEAR, FAR)
    hit = torch.zeros_like(inside)
    active = inside.nonzero().squeeze(1)
    for _ in range(steps):
        if active.numel() == 0:
            break
        points = origins[active] + t[active, None] * dirs[active]
        dist = _envelope(points)
        near = (dist < _NEAR_ENVELOPE).nonzero().squeeze(1)
        if near.numel():
            dist[near] = head_sdf(points[near].unsqueeze(1), heads.index(owner[active[near]])).squeeze(1)
        done = dist < _HIT_EPS
        hit[active[done]] = True
        t[active] = t[active] + torch.where(done, torch.zeros_like(dist), 0.85 * dist)
        active = active[~done & (t[active] < t_exit[active])]
    return t, hit


def _normals(points, heads):
    """Unit normals (M, 3) from the SDF by tetrahedral differences."""
    e = 5e-4
    k = torch.tensor([[1, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, 1, 1]], dtype=torch.float32, device=points.device)
    offsets = points.unsqueeze(1) + e * k  # (M, 4, 3)
    values = head_sdf(offsets.reshape(-1, 1, 3), _repeat(heads, 4)).reshape(-1, 4)
    return F.normalize((values.unsqueeze(-1) * k).sum(1), dim=-1)


def _repeat(heads: HeadParams, times: int) -> HeadParams:
    return heads.index(torch.arange(len(heads), device=heads.head_width.device).repeat_interleave(times))


def _base_colour(points, part, heads, style: StyleSpec):
    """Material colour (M, 3) of each surface point."""
    device = points.device
    skin = palette(SKIN_PALETTE, heads.skin_tone)
    # Cheeks a little redder, as in photos.
    blush = torch.exp(-((points[:, 0].abs() - 0.085) ** 2 + (points[:, 1] + 0.035) ** 2) / 0.0015)
    skin = skin * (1 - 0.18 * blush[:, None]) + torch.tensor([0.85, 0.35, 0.35], device=device) * 0.18 * blush[:, None]
    hair = palette(HAIR_PALETTE, heads.hair_colour)
    colours = torch.stack((
        skin,
        _eye_colour(points, heads, style),
        hair * 0.7,
        palette(LIP_PALETTE, heads.lip_colour) * (0.7 + 0.3 * skin),
        hair,
        torch.tensor([0.08, 0.08, 0.1], device=device).expand_as(skin),
        hue_colour(heads.hat_colour, saturation=0.75, value=0.8),
        hue_colour((heads.hat_colour + 0.4) % 1, saturation=0.4, value=0.55),
    ), 1)
    colour = colours[torch.arange(len(part), device=device), part]
    if style.monochrome is not None:
        colour = torch.tensor(style.monochrome, device=device).expand_as(colour).clone()
    grey = colour.mean(-1, keepdim=True)
    colour = grey + style.saturation * (colour - grey)
    colour = colour * (1 - style.tint_amount) + torch.tensor(style.tint, device=device) * style.tint_amount * colour.mean(-1, keepdim=True) * 2
    return (colour * style.value).clamp(0, 1)


def _eye_colour(points, heads, style):
    centres = eye_centres(heads)  # (M, 2, 3)
    nearest = (points.unsqueeze(1) - centres).norm(dim=-1).argmin(1)
    device = points.device
    centre = centres[torch.arange(len(points), device=device), nearest]
    outward = F.normalize(points - centre, dim=-1)
    gaze = F.normalize(torch.stack((heads.gaze_x, heads.gaze_y, torch.ones_like(heads.gaze_x)), -1), dim=-1)
    angle = torch.acos((outward * gaze).sum(-1).clamp(-1, 1))
    white = torch.tensor([0.93, 0.92, 0.88], device=device).expand(len(points), 3)
    if not style.iris:
        return white
    iris = palette(IRIS_PALETTE, heads.iris_colour)
    pupil = torch.tensor([0.03, 0.03, 0.04], device=device).expand_as(iris)
    # Iris and pupil as angular caps around the gaze; their size grows with the eye radius on
    # screen only, so stylized big eyes keep their proportions.
    colour = torch.where((angle < 0.62)[:, None], iris, white)
    return torch.where((angle < 0.27)[:, None], pupil, colour)


def _texture(points, normal, style: StyleSpec):
    """Multiplicative pattern (M,) anchored on the head surface."""
    s = 60.0 * style.texture_scale
    x, y, z = points.unbind(-1)
    if style.texture == "brush":  # long strokes that wave across the surface
        stroke = torch.sin(s * (0.8 * y + 0.3 * x) + 2.5 * torch.sin(0.35 * s * x + 1.7 * z * s * 0.3))
        return 1 + style.texture_strength * stroke * torch.sin(0.5 * s * z + 1.3)
    if style.texture == "stone":  # fine grain plus veins
        grain = torch.sin(2.1 * s * x + 1.3) * torch.sin(1.7 * s * y + 0.4) * torch.sin(1.9 * s * z + 2.2)
        vein = torch.sin(0.4 * s * (x + y) + 3 * torch.sin(0.3 * s * z))
        return 1 + style.texture_strength * (0.6 * grain + 0.4 * vein)
    return torch.ones(len(points), device=points.device)


def _shade(points, normal, dirs, part, heads, scene: Scene, style: StyleSpec):
    """Lit colour (M, 3) of surface points."""
    base = _base_colour(points, part, heads, style) * _texture(points, normal, style)[:, None]
    device, m = points.device, len(points)
    light = scene.light if style.light is None else light_direction(
        torch.full((m,), style.light[0], device=device), torch.full((m,), style.light[1], device=device))
    ambient = scene.ambient if style.ambient is None else torch.full((m,), style.ambient, device=device)
    diffuse = (normal * light).sum(-1).clamp_min(0)
    if style.shading == "cel":
        levels = style.cel_levels
        diffuse = torch.floor(diffuse * levels + 0.5).clamp(max=levels) / levels
    shade = ambient + (1 - ambient) * diffuse
    if style.texture == "halftone":  # ink dots in the shadows, on a grid fixed to the face plane
        cell = 0.018 / style.texture_scale
        fx = torch.remainder(points[:, 0], cell) / cell - 0.5
        fy = torch.remainder(points[:, 1], cell) / cell - 0.5
        dot = (fx * fx + fy * fy).sqrt() < 0.45 * (1 - shade).clamp(0, 1) * 1.6
        shade = torch.where(dot, shade * (1 - style.texture_strength), shade)
    colour = base * shade[:, None]
    if style.specular > 0:
        half = F.normalize(light - dirs, dim=-1)
        shiny = torch.tensor([0.3, 1.0, 0.2, 0.6, 0.4, 1.0, 0.2, 0.1], device=device)[part]
        colour = colour + style.specular * shiny[:, None] * (normal * half).sum(-1).clamp_min(0)[:, None] ** 30
    return colour.clamp(0, 1)


_INKED_PARTS = torch.tensor([0, 1, -1, 0, 4, 5, 6, 7])  # lips and brows merge into skin: no line


def _outline(rgb, depth, part, *, width: float, ink):
    """Ink lines about ``width`` pixels wide where depth jumps or the part changes."""
    region = torch.where(part >= 0, _INKED_PARTS.to(part.device)[part.clamp_min(0)], -2)
    region = torch.where(region == -1, torch.zeros_like(region), region).float()
    pad_d = F.pad(depth, (0, 1, 0, 1), mode="replicate")
    pad_r = F.pad(region, (0, 1, 0, 1), mode="replicate")
    edges = torch.zeros_like(depth, dtype=torch.bool)
    h, w = depth.shape[2:]
    for dy, dx in ((0, 1), (1, 0)):  # one-sided differences: lines one pixel wide before dilation
        edges |= (pad_d[:, :, dy:dy + h, dx:dx + w] - depth).abs() > 0.03
        edges |= pad_r[:, :, dy:dy + h, dx:dx + w] != region
    radius = int(width // 2)
    if radius > 0:
        edges = F.max_pool2d(edges.float(), 2 * radius + 1, stride=1, padding=radius) > 0
    ink_colour = torch.tensor(ink, device=rgb.device).view(1, 3, 1, 1)
    return torch.where(edges, ink_colour, rgb)


__all__ = ["FAR", "MATERIALS", "NEAR", "Render", "Scene", "eye_radius", "light_direction", "render"]
