"""Sec. 3.1's camera alignment: find the camera M(theta, phi, c, r) under which the 3D generator's
heads show their faces as the 2D style set shows its own.

The seed's equation is cut: (c', r') := argmin over (c, r) of a distance between the face
keypoints k_d of G(w, M(theta, phi, c, r)) and of the 2D generator's image of the same w. Our
reading, as the world allows: the 2D set's cameras are unknown per image, so the distance is
between the **mean keypoint layouts** of two sets of the same identities,

    (r', phi_0') = argmin || mean_i k(G(z_i, M(theta_i, phi_i + phi_0, r))) - mean_j k(I_j) ||^2,

with k MediaPipe Face Mesh's keypoints (:data:`KEYPOINTS`, in units of the image side), theta_i,
phi_i drawn from G's own training distribution, and two unknowns: the orbit radius r and the
camera's mean elevation phi_0 (our reading of the seed's c). The height of the point the camera
looks at is left at the study's pivot: a shift of it and one of phi_0 both move the face up or
down the image, and the mean layout cannot tell them apart (measured: fitted together, a
+8 deg pitch came back as +2 deg and a lower look-at point at the same distance). The world
renders the 2D set with a known shift (:class:`Camera` of the truth), so the recovered values are
scored against it.

    target = keypoint_layout(style_images)
    found, history = align(G, z, angles, target=target.layout, start=Camera())
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize

from portraitlib import cameras
from portraitlib.generator3d import render
from portraitlib.nets.configs import TriPlaneConfig
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.quality import image_landmarks
from portraitlib.training.warm3d import frontal_labels
from portraitlib.world.config import WorldConfig
from portraitlib.world.identity import params_from_latent
from portraitlib.world.renderer import Scene
from portraitlib.world.renderer import render as world_render
from portraitlib.world.styles import get_style

KEYPOINTS = tuple(range(468))
"""Face Mesh's 468 face points (its 10 iris points left out). Many points average the detector's
jitter: on a real-look set shifted by +8 deg, nine (eye and mouth corners, nose, chin, forehead)
gave back +10.1 deg, the 468 +7.9."""


@dataclass(frozen=True)
class Camera:
    """The camera parameters alignment looks for (the study's orbit camera, moved)."""

    radius: float = cameras.RADIUS
    """r: the orbit's radius (the camera's distance from the world's origin; it looks at ``cameras.PIVOT``)."""
    pitch: float = 0.0
    """phi_0: degrees added to every pitch of the distribution."""

    def labels(self, angles: torch.Tensor) -> torch.Tensor:
        """(N, 25) camera labels of yaw and pitch ``angles`` (N, >= 2) under this camera."""
        return cameras.make_labels(self.cam2world(angles))

    def ray_bounds(self, config: TriPlaneConfig) -> tuple[float, float]:
        """G's (near, far) along each ray (its config's ``ray_start``, ``ray_end``), moved with the radius."""
        return config.ray_start + self.radius - cameras.RADIUS, config.ray_end + self.radius - cameras.RADIUS

    def cam2world(self, angles: torch.Tensor) -> torch.Tensor:
        """(N, 4, 4) orbit cameras of ``angles`` (N, >= 2: yaw, pitch[, roll]) under this camera."""
        roll = angles[:, 2] if angles.shape[1] > 2 else 0.0
        return cameras.orbit_camera(angles[:, 0], angles[:, 1] + self.pitch, roll, radius=self.radius)


@dataclass(frozen=True)
class Layout:
    """The mean keypoint layout of a set of images."""

    layout: np.ndarray
    """(K, 2) mean x, y of :data:`KEYPOINTS` over the images with a face, in units of the image side."""
    found: float
    """Fraction of the images with a face."""


@dataclass(frozen=True)
class StyleSet:
    """A 2D style set the world renders: identities in one look under one camera, with the truth."""

    images: torch.Tensor
    """(N, 3, R, R) in [0, 1]."""
    depth: torch.Tensor
    """(N, 1, R, R) the true ray distance (the world's far plane on the background)."""
    mask: torch.Tensor
    """(N, 1, R, R) in [0, 1]: the head's coverage of each pixel."""
    latents: torch.Tensor
    """(N, D) the identities' latents."""
    angles: torch.Tensor
    """(N, 3) yaw, pitch, roll (degrees) before the camera's shift."""
    camera: Camera
    """The camera the set is seen through (its truth; unknown to the methods)."""

    def labels(self) -> torch.Tensor:
        """(N, 25) the true camera labels."""
        return self.camera.labels(self.angles)

    def codes(self, z_dim: int) -> torch.Tensor:
        """(N, z_dim) G_world's z of the identities: the latent, the median scene, zeros beyond."""
        return torch.cat([self.latents, torch.zeros(len(self.latents), z_dim - self.latents.shape[1])], 1)


@torch.no_grad()
def world_set(latents: torch.Tensor, angles: torch.Tensor, *, look: str, camera: Camera, config: WorldConfig,
              resolution: int | None = None, scene: Scene | None = None, batch: int = 64) -> StyleSet:
    """The world's renders of identities ``latents`` (N, D) in ``look`` at ``angles`` (N, 3) under
    ``camera`` (a 2D style set whose cameras differ from G's by a known shift), resized to
    ``resolution`` (default: the world's image size). ``scene`` (N rows) sets the light and
    background where the look keeps them (the real look; every style fixes its own); default the
    studio's."""
    c2w = camera.cam2world(angles)
    parts = [world_render(params_from_latent(latents[i:i + batch]), c2w[i:i + batch], resolution=config.image_size,
                          style=get_style(look), scene=None if scene is None else scene.index(slice(i, i + batch)),
                          supersample=config.supersample, steps=config.trace_steps)
             for i in range(0, len(latents), batch)]
    size = resolution or config.image_size
    out = {name: torch.cat([getattr(p, name) for p in parts]) for name in ("rgb", "depth", "mask")}
    if size != config.image_size:
        out = {name: F.interpolate(x, size=(size, size), mode="area") for name, x in out.items()}
    return StyleSet(images=out["rgb"], depth=out["depth"], mask=out["mask"], latents=latents, angles=angles,
                    camera=camera)


def keypoint_layout(images: torch.Tensor) -> Layout:
    """The mean :data:`KEYPOINTS` layout of images (N, 3, R, R) in [0, 1] (MediaPipe Face Mesh)."""
    marks = [m[list(KEYPOINTS), :2] for m in image_landmarks(images) if m is not None]
    if not marks:
        return Layout(layout=np.full((len(KEYPOINTS), 2), np.nan), found=0.0)
    return Layout(layout=np.mean(marks, 0), found=len(marks) / len(images))


def landmark_error(images: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per image (N,): the mean distance, in image sides, of the :data:`KEYPOINTS` of ``images``
    (N, 3, R, R) in [0, 1] from those of ``truth`` (the same heads at the same cameras): the
    geometry of the face (eye size, nose, jaw) as a face mesh sees it; NaN where either shows no face."""
    if images.shape != truth.shape:
        raise ValueError(f"images {tuple(images.shape)} and truth {tuple(truth.shape)} differ in shape")
    found, true = image_landmarks(images), image_landmarks(truth)
    return torch.tensor([float(np.linalg.norm(a[list(KEYPOINTS), :2] - b[list(KEYPOINTS), :2], axis=1).mean())
                         if a is not None and b is not None else float("nan") for a, b in zip(found, true)])


def layout_distance(seen: Layout, target: np.ndarray) -> float:
    """Mean squared distance between the keypoints of ``seen``'s layout and ``target`` (K, 2); 1.0
    (a whole image side) when fewer than half of ``seen``'s images show a face."""
    return float(((seen.layout - target) ** 2).sum(1).mean()) if seen.found >= 0.5 else 1.0


@torch.no_grad()
def renders(generator: TriPlaneGenerator, z: torch.Tensor, angles: torch.Tensor, camera: Camera, *,
            batch: int = 32) -> torch.Tensor:
    """G's images (N, 3, R, R) in [0, 1] of codes z (N, z_dim) at ``angles`` (N, 2-3) under ``camera``,
    its ray bounds moved with the radius (the mapping sees the frontal label: only the camera moves)."""
    device = next(generator.parameters()).device
    ws = generator.mapping(z.to(device), frontal_labels(len(z), device))
    return render(generator, ws, camera.labels(angles), batch=batch,
                  ray_bounds=camera.ray_bounds(generator.config))["image"].cpu()


def align(generator: TriPlaneGenerator, z: torch.Tensor, angles: torch.Tensor, *, target: np.ndarray,
          start: Camera = Camera(), evaluations: int = 60) -> tuple[Camera, list[dict]]:
    """The :class:`Camera` whose renders of codes z at ``angles`` have the keypoint layout closest to
    ``target`` (K, 2), by Nelder-Mead from ``start`` within ``evaluations`` renders of the set; and
    every evaluation (radius, pitch, distance, found)."""
    history = []

    def distance(x: np.ndarray) -> float:
        camera = Camera(radius=float(x[0]), pitch=float(x[1]))
        seen = keypoint_layout(renders(generator, z, angles, camera))
        value = layout_distance(seen, target)
        history.append({"radius": camera.radius, "pitch": camera.pitch,
                        "distance": value, "found": seen.found})
        return value

    x0 = np.array([start.radius, start.pitch])
    simplex = np.stack([x0, x0 + [0.3, 0.0], x0 + [0.0, 6.0]])
    result = minimize(distance, x0, method="Nelder-Mead",
                      options={"maxfev": evaluations, "initial_simplex": simplex, "xatol": 1e-3, "fatol": 1e-7})
    return Camera(radius=float(result.x[0]), pitch=float(result.x[1])), history
