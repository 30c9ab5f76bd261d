"""What the base models of the head world learn from: world codes z, rendered views with true depth,
and 3D point targets.

    codes = WorldCodes.sample(8, z_dim=CODE_DIM, generator=g)  # identity + photo conditions -> z
    views = render_views(codes, angles, config=world_config)   # images, labels, true depth
    pts = point_targets(codes.latents, views, points=2048, generator=g)
    z2d = image_codes(codes.z, angles)                         # S_world's z: + the camera's quantiles

G_world's z holds what makes a photo of the world and nothing else: the identity latent (LATENT_DIM
numbers), then the photo's light and background as the normal quantiles of the uniforms
``Scene.sample`` draws (SCENE_DIM numbers). Every z ~ N(0, I) is the code of a photo, so G's prior
samples are heads. (Free noise dims, which the world ignores, drowned the code in the probes of
issue #26; a config with z_dim > CODE_DIM gets zeros there.) S_world, a 2D generator, also needs
the camera: its z ends with the yaw and pitch quantiles of the training cameras' uniform ranges.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from portraitlib import cameras
from portraitlib.world.config import WorldConfig
from portraitlib.world.head import head_sdf
from portraitlib.world.identity import LATENT_DIM, params_from_latent, sample_latents
from portraitlib.world.renderer import FAR, NEAR, Scene, render
from portraitlib.world.styles import REAL

SCENE_DIM = 5
"""Uniforms of ``Scene.sample`` that set a photo (light azimuth, elevation, background hue and
level, ambient)."""
CODE_DIM = LATENT_DIM + SCENE_DIM
"""Numbers of z the world reads."""
POOL_YAW, POOL_PITCH = 30.0, 15.0
"""The world pool's training cameras: yaw and pitch uniform in +- these degrees. S_world's camera
quantiles (:func:`image_codes`) are taken in the same ranges."""
IMAGE_CODE_DIM = CODE_DIM + 2
"""S_world's z: the world code, then the yaw and pitch quantiles (:func:`image_codes`)."""
SIGMA_MAX = 200.0
"""Target density deep inside the head (EG3D units: softplus(raw - 1) per unit ray length)."""
SURFACE_WIDTH = 0.004
"""World units over which the target density rises from 0 to SIGMA_MAX at the surface."""


@dataclass(frozen=True)
class WorldCodes:
    """N photos' worth of world codes."""

    z: torch.Tensor
    """(N, z_dim) G's input: identity latent, scene quantiles (zeros beyond CODE_DIM)."""
    scene: Scene
    """The light and background each row's z encodes."""

    @property
    def latents(self) -> torch.Tensor:
        """(N, LATENT_DIM) identity latents."""
        return self.z[:, :LATENT_DIM]

    def __len__(self) -> int:
        return len(self.z)

    def index(self, idx) -> "WorldCodes":
        return WorldCodes(z=self.z[idx], scene=self.scene.index(idx))

    @staticmethod
    def sample(n: int, *, z_dim: int, generator: torch.Generator) -> "WorldCodes":
        """n codes of new identities in new photo conditions (all from ``generator``, a CPU one; the
        scene is ``Scene.sample``'s draw)."""
        if z_dim < CODE_DIM:
            raise ValueError(f"G_world needs z_dim >= {CODE_DIM} (identity + scene), got {z_dim}")
        latents = sample_latents(n, generator=generator)
        u = torch.rand(n, 6, generator=generator)[:, :SCENE_DIM]
        quantiles = torch.special.ndtri(u.clamp(1e-4, 1 - 1e-4))
        return WorldCodes(z=torch.cat([latents, quantiles, torch.zeros(n, z_dim - CODE_DIM)], 1),
                          scene=Scene.from_uniforms(u))

    @staticmethod
    def from_z(z: torch.Tensor) -> "WorldCodes":
        """The photos that codes z (N, >= CODE_DIM) stand for - any z, e.g. z ~ N(0, I) of G's prior:
        the identity latent and the scene of the quantiles (on z's device)."""
        if z.shape[1] < CODE_DIM:
            raise ValueError(f"world codes have at least {CODE_DIM} numbers, got {z.shape[1]}")
        u = torch.special.ndtr(z[:, LATENT_DIM:CODE_DIM].float())
        return WorldCodes(z=z, scene=Scene.from_uniforms(u))


@dataclass(frozen=True)
class Views:
    """Rendered views of N codes (real look), each with its camera and the world's truth."""

    images: torch.Tensor
    """(N, 3, R, R) in [0, 1]."""
    labels: torch.Tensor
    """(N, 25) camera labels."""
    depth: torch.Tensor
    """(N, 1, R, R) ray distance; the far plane on the background."""


def render_views(codes: WorldCodes, angles: torch.Tensor, *, config: WorldConfig, resolution: int | None = None,
                 supersample: int | None = None) -> Views:
    """The real-look photos of ``codes`` at ``angles`` (N, 3) degrees, on the CPU (default size and
    anti-aliasing: the world config's)."""
    c2w = cameras.orbit_camera(angles[:, 0], angles[:, 1], angles[:, 2])
    out = render(params_from_latent(codes.latents), c2w, resolution=resolution or config.image_size, style=REAL,
                 scene=codes.scene, supersample=supersample or config.supersample, steps=config.trace_steps)
    return Views(images=out.rgb, labels=cameras.make_labels(c2w), depth=out.depth)


def image_codes(z: torch.Tensor, angles: torch.Tensor, *, max_yaw: float = POOL_YAW, max_pitch: float = POOL_PITCH
                ) -> torch.Tensor:
    """S_world's z (N, IMAGE_CODE_DIM): world codes z (N, >= CODE_DIM) and the normal quantiles of
    the cameras' yaw and pitch (N, >= 2 degrees) in the uniform ranges +-max_yaw, +-max_pitch."""
    u = torch.stack((angles[:, 0] / max_yaw, angles[:, 1] / max_pitch), 1).add(1).div(2)
    return torch.cat([z[:, :CODE_DIM], torch.special.ndtri(u.clamp(1e-3, 1 - 1e-3))], 1)


def random_angles(n: int, *, max_yaw: float, max_pitch: float, generator: torch.Generator) -> torch.Tensor:
    """(n, 3) yaw, pitch uniform in +-max_yaw, +-max_pitch degrees, roll 0."""
    u = torch.rand(n, 2, generator=generator) * 2 - 1
    return torch.stack((u[:, 0] * max_yaw, u[:, 1] * max_pitch, torch.zeros(n)), -1)


def target_density(sdf: torch.Tensor) -> torch.Tensor:
    """Target EG3D density of points at signed distances ``sdf`` (any shape): SIGMA_MAX inside,
    0 outside, a sigmoid of width SURFACE_WIDTH between."""
    return SIGMA_MAX * torch.sigmoid(-sdf / SURFACE_WIDTH)


@dataclass(frozen=True)
class PointTargets:
    """3D supervision of N fields at P points each."""

    points: torch.Tensor
    """(N, P, 3) world coordinates."""
    sigma: torch.Tensor
    """(N, P) target density (:func:`target_density` of the head's SDF)."""
    colour: torch.Tensor
    """(N, P, 3) target colour in [0, 1]: the colour of the pixel whose ray the point lies on."""
    colour_weight: torch.Tensor
    """(N, P) how much the colour counts: 1 at that pixel's surface, falling off along its ray."""


def point_targets(latents: torch.Tensor, views: Views, *, points: int, spread: float = 0.03,
                  generator: torch.Generator) -> PointTargets:
    """Points on the rays of ``views`` (N photos of the identities ``latents`` (N, LATENT_DIM)) with
    the world's density and colour.

    Half the points lie near the surface the ray hits (true depth + N(0, spread)); they take the
    pixel's rendered colour, weighted by exp(-(offset / spread)^2). The other half lie anywhere on
    random rays between the near and far planes (density only, mostly empty space and interior).
    """
    n, _, res, _ = views.images.shape
    origins, dirs = cameras.rays(cameras.split_labels(views.labels)[0], res)  # (N, R*R, 3)
    rgb = views.images.flatten(2).transpose(1, 2)  # (N, R*R, 3)
    depth = views.depth.flatten(1)  # (N, R*R)
    hit = depth < FAR - 1e-3
    half = points // 2
    # Near-surface rays: a hit pixel, drawn uniformly among each view's hit pixels.
    weights = hit.float() + 1e-6
    near_idx = torch.multinomial(weights, half, replacement=True, generator=generator)  # (N, half)
    offset = torch.randn(n, half, generator=generator) * spread
    t_near = depth.gather(1, near_idx) + offset
    # Anywhere: uniform pixels, uniform depth.
    any_idx = torch.randint(res * res, (n, points - half), generator=generator)
    t_any = NEAR + (FAR - NEAR) * torch.rand(n, points - half, generator=generator)
    idx = torch.cat([near_idx, any_idx], 1)
    t = torch.cat([t_near, t_any], 1)
    take = idx.unsqueeze(-1).expand(-1, -1, 3)
    p = origins.gather(1, take) + t.unsqueeze(-1) * dirs.gather(1, take)
    sdf = head_sdf(p, params_from_latent(latents))
    colour_weight = torch.cat([torch.exp(-(offset / spread) ** 2), torch.zeros(n, points - half)], 1)
    colour_weight = colour_weight * hit.gather(1, idx).float()
    return PointTargets(points=p, sigma=target_density(sdf), colour=rgb.gather(1, take), colour_weight=colour_weight)

