"""Signed distance field of a procedural head (world units; the head faces +z, up is +y).

Every function takes points ``p`` (N, P, 3) and per-head parameters (N,) and returns distances
(N, P). The head fits the EG3D box: skull about 0.35 wide, face front near z = 0.19.
"""
from __future__ import annotations

import torch

from portraitlib.world.identity import HeadParams

MATERIALS = ("skin", "eye", "brow", "lip", "hair", "glasses", "hat", "clothes")
"""Material index of each part, in the order of :func:`head_parts`."""
_ABSENT = 10.0  # distance added to a part a head does not have (no glasses, short hair...)


def _col(x: torch.Tensor) -> torch.Tensor:
    return x[:, None]


def ellipsoid(p, centre, radii):
    """Approximate SDF of an ellipsoid (a bound near the surface); centre/radii (N, 3) or (3,)."""
    q = p - centre.unsqueeze(-2) if centre.ndim == 2 else p - centre
    r = radii.unsqueeze(-2) if radii.ndim == 2 else radii
    k0 = (q / r).norm(dim=-1)
    k1 = (q / (r * r)).norm(dim=-1).clamp_min(1e-9)
    return k0 * (k0 - 1) / k1


def smooth_union(a, b, k: float):
    h = (0.5 + 0.5 * (b - a) / k).clamp(0, 1)
    return b * (1 - h) + a * h - k * h * (1 - h)


def smooth_subtract(a, b, k: float):
    """``a`` with ``b`` carved out."""
    h = (0.5 - 0.5 * (a + b) / k).clamp(0, 1)
    return a * (1 - h) + (-b) * h + k * h * (1 - h)


def capsule(p, a, b, radius: float):
    """SDF of a capsule from ``a`` to ``b`` (each (N, 3))."""
    a, b = a.unsqueeze(1), b.unsqueeze(1)
    pa, ba = p - a, b - a
    t = ((pa * ba).sum(-1, keepdim=True) / (ba * ba).sum(-1, keepdim=True)).clamp(0, 1)
    return (pa - ba * t).norm(dim=-1) - radius


def _vec(h: HeadParams, *components) -> torch.Tensor:
    """Stack per-head components (each (N,) or a float) into (N, 3)."""
    device = h.head_width.device
    return torch.stack([c if isinstance(c, torch.Tensor) else torch.full((len(h),), float(c), device=device)
                        for c in components], -1)


def eye_centres(h: HeadParams) -> torch.Tensor:
    """Eyeball centres (N, 2, 3): the subject's right eye (world -x) first."""
    x = 0.062 * h.eye_spacing
    right = _vec(h, -x, 0.045, 0.150)
    return torch.stack((right, right * torch.tensor([-1.0, 1.0, 1.0], device=right.device)), 1)


def eye_radius(h: HeadParams) -> torch.Tensor:
    return 0.026 * h.eye_size


def head_parts(p: torch.Tensor, h: HeadParams) -> torch.Tensor:
    """Distances (N, P, 8) of points to each material's surface, in the order of MATERIALS."""
    hw, hh, hd = h.head_width, h.head_height, h.head_depth
    skull = ellipsoid(p, _vec(h, 0, 0.06, -0.02), _vec(h, 0.175 * hw, 0.215 * hh, 0.205 * hd))
    jaw = ellipsoid(p, _vec(h, 0, -0.085, 0.03), _vec(h, 0.135 * h.jaw_width, 0.125 * h.chin_length, 0.155))
    chin = ellipsoid(p, _vec(h, 0, -0.085 - 0.09 * h.chin_length, 0.115), _vec(h, 0.05 * h.jaw_width, 0.045, 0.05))
    skin = smooth_union(smooth_union(skull, jaw, 0.06), chin, 0.04)
    for side in (-1.0, 1.0):
        cheek = ellipsoid(p, _vec(h, side * 0.085 * hw, -0.03, 0.105), _vec(h, 0.065, 0.06, 0.065))
        skin = smooth_union(skin, cheek, 0.04)
        ear = ellipsoid(p, _vec(h, side * 0.172 * hw, 0.02, -0.03), _vec(h, 0.02, 0.05 * h.ear_size, 0.035 * h.ear_size))
        skin = smooth_union(skin, ear, 0.015)
    bridge = ellipsoid(p, _vec(h, 0, -0.01, 0.188), _vec(h, 0.02 * h.nose_width, 0.055 * h.nose_length, 0.04 * h.nose_protrusion))
    tip = ellipsoid(p, _vec(h, 0, -0.005 - 0.055 * h.nose_length, 0.2 + 0.035 * h.nose_protrusion),
                    _vec(h, 0.026 * h.nose_width, 0.022, 0.024))
    skin = smooth_union(skin, smooth_union(bridge, tip, 0.02), 0.02)
    neck = torch.maximum((p[..., [0, 2]] - torch.tensor([0.0, -0.03], device=p.device)).norm(dim=-1) - 0.085,
                         (p[..., 1] + 0.36).abs() - 0.26)  # from y = -0.62 up to -0.1
    skin = smooth_union(skin, neck, 0.05)
    centres, radius = eye_centres(h), _col(eye_radius(h))
    eyes = torch.full_like(skin, _ABSENT)
    brows = torch.full_like(skin, _ABSENT)
    for e in range(2):
        to_eye = (p - centres[:, e].unsqueeze(1)).norm(dim=-1)
        skin = smooth_subtract(skin, to_eye - radius * 1.3, 0.01)
        eyes = torch.minimum(eyes, to_eye - radius)
        brow_centre = _vec(h, centres[:, e, 0] * 1.08, 0.045 + 0.048 * h.brow_height, 0.172)
        brows = torch.minimum(brows, ellipsoid(p, brow_centre, _vec(h, 0.036, 0.0075 * h.brow_thickness, 0.012)))
    mouth = _vec(h, 0.042 * h.mouth_width, 0.011 * h.lip_fullness, 0.02)
    lips = torch.minimum(ellipsoid(p, _vec(h, 0, -0.094, 0.176), mouth),
                         ellipsoid(p, _vec(h, 0, -0.117, 0.170), mouth * torch.tensor([0.9, 1.1, 1.0], device=p.device)))
    hair = _hair(p, h)
    glasses = _glasses(p, h, centres) + _ABSENT * (1 - _col(h.glasses))
    hat = torch.maximum(ellipsoid(p, _vec(h, 0, 0.085, -0.03), _vec(h, 0.2 * hw * h.hair_volume, 0.235 * hh, 0.232 * hd)),
                        0.165 - p[..., 1]) + _ABSENT * (1 - _col(h.hat))
    clothes = ellipsoid(p, _vec(h, 0, -0.5, -0.06), _vec(h, 0.3, 0.17, 0.17))
    return torch.stack((skin, eyes, brows, lips, hair, glasses, hat, clothes), -1)


def _hair(p, h: HeadParams):
    v = h.hair_volume
    window = ellipsoid(p, _vec(h, 0, -0.07, 0.2), _vec(h, 0.155 * h.head_width, 0.235, 0.2))
    cap = ellipsoid(p, _vec(h, 0, 0.085, -0.04), _vec(h, 0.183 * h.head_width * v, 0.222 * h.head_height * v, 0.222 * v))
    length = h.hair_length
    back = ellipsoid(p, _vec(h, 0, 0.02 - 0.2 * length, -0.11), _vec(h, 0.185 * v, 0.07 + 0.24 * length, 0.12 * v))
    back = back + _ABSENT * (_col(length) < 0.3).float()
    return torch.maximum(smooth_union(cap, back, 0.05), -window)


def _glasses(p, h: HeadParams, centres):
    rim = torch.full(p.shape[:2], _ABSENT, device=p.device)
    z = 0.205
    for e in range(2):
        c = centres[:, e].clone()
        c[:, 2] = z
        q = p - c.unsqueeze(1)
        ring = torch.stack((q[..., :2].norm(dim=-1) - _col(0.034 * h.eye_size), q[..., 2]), -1).norm(dim=-1) - 0.0055
        rim = torch.minimum(rim, ring)
    inner = centres[:, 1, 0] - 0.034 * h.eye_size
    outer = centres[:, 1, 0] + 0.034 * h.eye_size
    bridge = capsule(p, _vec(h, -inner, 0.05, z), _vec(h, inner, 0.05, z), 0.005)
    for side in (-1.0, 1.0):
        arm = capsule(p, _vec(h, side * outer, 0.05, z), _vec(h, side * 0.18 * h.head_width, 0.04, -0.03), 0.005)
        rim = torch.minimum(rim, arm)
    return torch.minimum(rim, bridge)


def head_sdf(p: torch.Tensor, h: HeadParams) -> torch.Tensor:
    """Signed distance (N, P) to the whole head."""
    return head_parts(p, h).min(-1).values
