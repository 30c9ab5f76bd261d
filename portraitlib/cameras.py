"""EG3D camera conventions: 25-d labels, orbit cameras, mirroring, pose distributions.

A label is ``cam2world`` (4x4, OpenCV axes: x right, y down, z forward) flattened, followed by the
normalised 3x3 intrinsics flattened. World +y is up, the face looks toward +z and image right
is world +x (the subject's left). Cameras sit on a sphere of radius 2.7 about the origin and look
at the pivot (0, 0, 0.2).

Angles in this module are degrees. ``yaw`` is the camera's azimuth about the world y axis
(positive: camera toward +x, showing the subject's left cheek), ``pitch`` its elevation (positive:
camera above the face, looking down), ``roll`` a rotation of the camera about its viewing axis
(positive: the camera's right vector turns toward its un-rolled down vector).
"""
from __future__ import annotations

import math

import torch

FOCAL = 4.2647
"""Normalised focal length of the EG3D FFHQ cameras."""
RADIUS = 2.7
"""Distance of the camera from the world origin."""
PIVOT = (0.0, 0.0, 0.2)
"""Point every orbit camera looks at."""
FRONTAL_CAM2WORLD = ((1.0, 0.0, 0.0, 0.0), (0.0, -1.0, 0.0, 0.0), (0.0, 0.0, -1.0, 2.7), (0.0, 0.0, 0.0, 1.0))
"""The frontal camera, exactly as the official release has it."""


def intrinsics(batch: int = 1, *, focal: float = FOCAL, device: torch.device | str = "cpu") -> torch.Tensor:
    """Normalised intrinsics, shape (batch, 3, 3)."""
    k = torch.tensor([[focal, 0.0, 0.5], [0.0, focal, 0.5], [0.0, 0.0, 1.0]], device=device)
    return k.expand(batch, 3, 3).clone()


def look_at(origin: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """cam2world (N, 4, 4) for cameras at ``origin`` (N, 3) looking at ``target`` (N, 3) or (3,),
    with world +y up; the same construction as the official sampler."""
    forward = torch.nn.functional.normalize(target.to(origin) - origin, dim=-1)
    up = torch.tensor([0.0, 1.0, 0.0], dtype=origin.dtype, device=origin.device).expand_as(forward)
    right = -torch.nn.functional.normalize(torch.cross(up, forward, dim=-1), dim=-1)
    down = torch.nn.functional.normalize(torch.cross(forward, right, dim=-1), dim=-1)
    cam2world = torch.eye(4, dtype=origin.dtype, device=origin.device).repeat(origin.shape[0], 1, 1)
    cam2world[:, :3, :3] = torch.stack((right, down, forward), dim=-1)
    cam2world[:, :3, 3] = origin
    return cam2world


def orbit_camera(yaw, pitch, roll=0.0, *, radius: float = RADIUS, pivot=PIVOT) -> torch.Tensor:
    """cam2world (N, 4, 4) on the sphere of ``radius`` at ``yaw``/``pitch`` (degrees), looking at
    ``pivot``, then rolled by ``roll`` degrees about its viewing axis. On the device of the first
    angle given as a tensor (else the CPU)."""
    device = next((a.device for a in (yaw, pitch, roll) if isinstance(a, torch.Tensor)), torch.device("cpu"))
    yaw, pitch, roll = (torch.as_tensor(a, dtype=torch.float64, device=device).reshape(-1) for a in (yaw, pitch, roll))
    yaw, pitch, roll = torch.broadcast_tensors(yaw, pitch, roll)
    y, p = torch.deg2rad(yaw), torch.deg2rad(pitch)
    origin = radius * torch.stack((torch.cos(p) * torch.sin(y), torch.sin(p), torch.cos(p) * torch.cos(y)), -1)
    cam2world = look_at(origin, torch.tensor(pivot, dtype=torch.float64, device=device))
    r = torch.deg2rad(roll)
    spin = torch.eye(4, dtype=torch.float64, device=device).repeat(len(r), 1, 1)
    spin[:, 0, 0], spin[:, 0, 1], spin[:, 1, 0], spin[:, 1, 1] = torch.cos(r), -torch.sin(r), torch.sin(r), torch.cos(r)
    return (cam2world @ spin).float()


def official_sampler_camera(horizontal: float, vertical: float, *, radius: float = RADIUS,
                            pivot=PIVOT) -> torch.Tensor:
    """cam2world (1, 4, 4) from the official LookAtPoseSampler's angles in radians
    ((pi/2, pi/2) is frontal; its vertical angle goes through ``arccos(1 - 2 v / pi)``)."""
    phi = math.acos(1 - 2 * min(max(vertical, 1e-5), math.pi - 1e-5) / math.pi)
    origin = torch.tensor([[radius * math.sin(phi) * math.cos(math.pi - horizontal),
                            radius * math.cos(phi),
                            radius * math.sin(phi) * math.sin(math.pi - horizontal)]], dtype=torch.float64,
                          device="cpu")
    return look_at(origin, torch.tensor(pivot, dtype=torch.float64, device="cpu")).float()


def angles(cam2world: torch.Tensor, *, pivot=PIVOT) -> torch.Tensor:
    """(yaw, pitch, roll) in degrees, shape (N, 3), of cameras (N, 4, 4); inverse of
    :func:`orbit_camera` for cameras that look at the pivot."""
    cam2world = cam2world.double().reshape(-1, 4, 4)
    origin = cam2world[:, :3, 3]
    dist = origin.norm(dim=-1)
    yaw = torch.rad2deg(torch.atan2(origin[:, 0], origin[:, 2]))
    pitch = torch.rad2deg(torch.asin((origin[:, 1] / dist).clamp(-1, 1)))
    unrolled = look_at(origin, torch.tensor(pivot, dtype=torch.float64, device=origin.device))
    # Roll: angle of the camera's right vector within the un-rolled camera's image plane.
    right = cam2world[:, :3, 0]
    x = (right * unrolled[:, :3, 0]).sum(-1)
    y = (right * unrolled[:, :3, 1]).sum(-1)
    roll = torch.rad2deg(torch.atan2(y, x))
    return torch.stack((yaw, pitch, roll), -1).float()


def make_labels(cam2world: torch.Tensor, *, focal: float = FOCAL) -> torch.Tensor:
    """25-d labels (N, 25): cam2world flattened, then intrinsics flattened."""
    cam2world = cam2world.reshape(-1, 4, 4).float()
    k = intrinsics(len(cam2world), focal=focal, device=cam2world.device)
    return torch.cat((cam2world.flatten(1), k.flatten(1)), 1)


def split_labels(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cam2world (N, 4, 4), intrinsics (N, 3, 3)) of labels (N, 25)."""
    labels = labels.reshape(-1, 25)
    return labels[:, :16].reshape(-1, 4, 4), labels[:, 16:].reshape(-1, 3, 3)


def labels_from_angles(yaw, pitch, roll=0.0) -> torch.Tensor:
    """25-d labels (N, 25) of orbit cameras at the given angles (degrees)."""
    return make_labels(orbit_camera(yaw, pitch, roll))


def angles_from_labels(labels: torch.Tensor) -> torch.Tensor:
    """(yaw, pitch, roll) in degrees, shape (N, 3), of labels (N, 25)."""
    return angles(split_labels(labels)[0])


def mirror_labels(labels: torch.Tensor) -> torch.Tensor:
    """Labels of the horizontally mirrored images: world x and camera x flip, so the entries
    [0,1], [0,2], [1,0], [2,0] and [0,3] of cam2world change sign."""
    mirrored = labels.clone().reshape(-1, 25)
    for row, col in ((0, 1), (0, 2), (1, 0), (2, 0), (0, 3)):
        mirrored[:, row * 4 + col] *= -1
    return mirrored


def angular_error(labels_a: torch.Tensor, labels_b: torch.Tensor) -> torch.Tensor:
    """Viewpoint error in degrees (N,): the angle between the two cameras' positions seen from the
    world origin (for orbit cameras, the orbit angle between them; a yaw error of 10 deg is 10)."""
    fa = split_labels(labels_a)[0][:, :3, 3]
    fb = split_labels(labels_b)[0][:, :3, 3]
    cos = torch.nn.functional.cosine_similarity(fa.double(), fb.double(), dim=-1).clamp(-1, 1)
    return torch.rad2deg(torch.acos(cos)).float()


def sample_poses(n: int, *, generator: torch.Generator, kind: str = "ffhq") -> torch.Tensor:
    """(n, 3) yaw, pitch, roll in degrees.

    ``ffhq``: frontal-heavy with tails like FFHQ's (80% yaw ~ N(0, 12), 20% ~ N(0, 32), clipped
    to +-60; pitch ~ N(0, 8) clipped to +-25). ``artist``: how artists draw portraits, mostly
    frontal (yaw ~ N(0, 10), pitch ~ N(0, 5)). ``uniform``: yaw in +-45, pitch in +-20.
    """
    d = generator.device
    if kind == "ffhq":
        wide = torch.rand(n, generator=generator, device=d) < 0.2
        yaw = torch.randn(n, generator=generator, device=d) * torch.where(wide, 32.0, 12.0)
        yaw, pitch = yaw.clamp(-60, 60), (torch.randn(n, generator=generator, device=d) * 8).clamp(-25, 25)
    elif kind == "artist":
        yaw = (torch.randn(n, generator=generator, device=d) * 10).clamp(-35, 35)
        pitch = (torch.randn(n, generator=generator, device=d) * 5).clamp(-15, 15)
    elif kind == "uniform":
        yaw = (torch.rand(n, generator=generator, device=d) * 2 - 1) * 45
        pitch = (torch.rand(n, generator=generator, device=d) * 2 - 1) * 20
    else:
        raise ValueError(f"unknown pose distribution {kind!r}; valid: ffhq, artist, uniform")
    return torch.stack((yaw, pitch, torch.zeros(n, device=d)), -1)


def rays(cam2world: torch.Tensor, resolution: int, *, focal: float = FOCAL,
         intrinsics: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray origins and unit directions, each (N, resolution*resolution, 3), through pixel
    centres ((i + 0.5) / resolution), row-major from the top-left pixel.

    ``intrinsics`` (N, 3, 3), normalised as in the labels: each camera's fx, fy, cx, cy and skew
    (the official sampler's lift of a pixel (u, v): x = (u - cx - skew (v - cy) / fy) / fx,
    y = (v - cy) / fy, z = 1). Without them: ``focal`` with the principal point at the centre.
    """
    n = cam2world.shape[0]
    if intrinsics is None:
        fx = fy = focal
        cx = cy = 0.5
        skew = 0.0
    else:
        k = intrinsics.to(cam2world).reshape(n, 3, 3)
        fx, fy, cx, cy, skew = (k[:, i, j].view(n, 1, 1) for i, j in ((0, 0), (1, 1), (0, 2), (1, 2), (0, 1)))
    centres = (torch.arange(resolution, dtype=cam2world.dtype, device=cam2world.device) + 0.5) / resolution
    v, u = torch.meshgrid(centres, centres, indexing="ij")
    y = (v - cy) / fy
    x = (u - cx - skew * y) / fx
    cam_dirs = torch.stack((x, y, torch.ones_like(x)), -1).reshape(-1, resolution * resolution, 3)
    dirs = torch.nn.functional.normalize(cam_dirs @ cam2world[:, :3, :3].transpose(1, 2), dim=-1)
    origins = cam2world[:, None, :3, 3].expand(n, resolution * resolution, 3)
    return origins, dirs


def project(points: torch.Tensor, cam2world: torch.Tensor, *, focal: float = FOCAL) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised image coordinates (N, P, 2) in [0, 1] and camera-space depth z (N, P) of world
    points (N, P, 3)."""
    world2cam = torch.linalg.inv(cam2world)
    cam = points @ world2cam[:, :3, :3].transpose(1, 2) + world2cam[:, None, :3, 3]
    z = cam[..., 2]
    uv = cam[..., :2] / z.unsqueeze(-1).clamp_min(1e-6) * focal + 0.5
    return uv, z
