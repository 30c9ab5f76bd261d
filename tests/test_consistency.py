"""Depth reprojection between views: zero for a true surface, large for a wrong one."""
import pytest
import torch

from portraitlib import cameras, consistency


def sphere_depth(yaw: float, resolution: int = 48, radius: float = 0.3):
    """Exact ray distance to a sphere at the origin seen from an orbit camera, and its hit mask."""
    labels = consistency.yaw_labels([yaw])
    cam2world, _ = cameras.split_labels(labels)
    o, d = cameras.rays(cam2world, resolution)
    b = (o * d).sum(-1)
    disc = b ** 2 - (o.square().sum(-1) - radius ** 2)
    hit = disc > 0
    t = torch.where(hit, -b - disc.clamp_min(0).sqrt(), torch.full_like(b, 4.0))
    return t.reshape(1, 1, resolution, resolution), hit.reshape(1, 1, resolution, resolution), labels


def test_a_true_surface_reprojects_with_near_zero_error():
    da, ma, la = sphere_depth(-20.0)
    db, mb, lb = sphere_depth(20.0)
    err = consistency.reprojection_error(da, la, db, lb, mask_a=ma, mask_b=mb)
    assert err["median"] < 0.005 and err["fraction"] > 0.5


def test_a_wrong_surface_does_not():
    da, ma, la = sphere_depth(-20.0)
    db, mb, lb = sphere_depth(20.0)
    err = consistency.reprojection_error(da * 0.95, la, db, lb, mask_a=ma, mask_b=mb)
    assert err["median"] > 0.05


def test_surface_points_lie_on_the_sphere():
    d, m, labels = sphere_depth(10.0)
    points = consistency.surface_points(d, labels)[m.flatten(1)]
    assert torch.allclose(points.norm(dim=-1), torch.full((len(points),), 0.3), atol=1e-4)


def test_no_overlap_is_an_error():
    da, ma, la = sphere_depth(0.0)
    with pytest.raises(ValueError, match="no foreground pixel"):
        consistency.reprojection_error(da, la, da, la, mask_a=torch.zeros_like(ma))
