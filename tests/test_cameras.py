import math

import pytest
import torch

from portraitlib import cameras


def test_frontal_camera_is_exactly_the_official_matrix():
    assert torch.equal(cameras.orbit_camera(0.0, 0.0)[0], torch.tensor(cameras.FRONTAL_CAM2WORLD))
    label = cameras.labels_from_angles(0.0, 0.0)[0]
    assert label.shape == (25,)
    assert label[16:].tolist() == pytest.approx([4.2647, 0, 0.5, 0, 4.2647, 0.5, 0, 0, 1])


def test_official_sampler_convention_matches_our_orbit():
    official = cameras.official_sampler_camera(math.pi / 2, math.pi / 2)[0]
    assert torch.allclose(official, torch.tensor(cameras.FRONTAL_CAM2WORLD), atol=1e-6)
    # A horizontal angle of pi/2 + 0.3 rad is our yaw of +0.3 rad (camera toward +x).
    turned = cameras.official_sampler_camera(math.pi / 2 + 0.3, math.pi / 2)
    assert cameras.angles(turned)[0, 0].item() == pytest.approx(math.degrees(0.3), abs=1e-3)


def test_cameras_look_at_the_pivot_from_radius():
    c2w = cameras.orbit_camera(torch.tensor([25.0, -40.0]), torch.tensor([10.0, -15.0]))
    assert torch.allclose(c2w[:, :3, 3].norm(dim=-1), torch.tensor(2.7))
    uv, _ = cameras.project(torch.tensor(cameras.PIVOT).expand(2, 1, 3), c2w)
    assert torch.allclose(uv, torch.tensor(0.5), atol=1e-5)
    assert (c2w[:, 1, 3] * torch.tensor([1.0, -1.0]) > 0).all(), "positive pitch puts the camera above"


def test_angles_round_trip_within_a_hundredth_of_a_degree():
    g = torch.Generator().manual_seed(0)
    angles = torch.stack([torch.rand(500, generator=g) * 120 - 60, torch.rand(500, generator=g) * 60 - 30,
                          torch.rand(500, generator=g) * 40 - 20], -1)
    back = cameras.angles_from_labels(cameras.labels_from_angles(*angles.T))
    assert (back - angles).abs().max() < 0.01


def test_mirroring_negates_yaw_and_roll_and_is_an_involution():
    labels = cameras.labels_from_angles(torch.tensor([20.0, -35.0]), torch.tensor([5.0, -10.0]), torch.tensor([3.0, 0.0]))
    mirrored = cameras.mirror_labels(labels)
    assert torch.allclose(cameras.angles_from_labels(mirrored),
                          cameras.angles_from_labels(labels) * torch.tensor([-1.0, 1.0, -1.0]), atol=1e-4)
    assert torch.equal(cameras.mirror_labels(mirrored), labels)


def test_rays_and_projection_agree():
    c2w = cameras.orbit_camera(torch.tensor([15.0]), torch.tensor([-5.0]))
    origins, dirs = cameras.rays(c2w, 8)
    assert torch.allclose(dirs.norm(dim=-1), torch.tensor(1.0))
    points = origins + 2.5 * dirs
    uv, z = cameras.project(points, c2w)
    centres = (torch.arange(8) + 0.5) / 8
    v, u = torch.meshgrid(centres, centres, indexing="ij")
    assert torch.allclose(uv[0], torch.stack((u, v), -1).reshape(-1, 2), atol=1e-5)
    assert (z > 0).all()


def test_angular_error_and_pose_distributions():
    a, b = cameras.labels_from_angles(0.0, 0.0), cameras.labels_from_angles(10.0, 0.0)
    assert cameras.angular_error(a, b).item() == pytest.approx(10.0, abs=0.05)
    g = torch.Generator().manual_seed(1)
    ffhq, artist = (cameras.sample_poses(4000, generator=g, kind=k) for k in ("ffhq", "artist"))
    assert ffhq[:, 0].abs().max() <= 60 and ffhq[:, 1].abs().max() <= 25
    assert ffhq[:, 0].abs().median() < 12, "FFHQ-like poses are frontal-heavy"
    assert (ffhq[:, 0].abs() > 30).float().mean() > 0.03, "...with tails"
    assert artist[:, 0].std() < ffhq[:, 0].std()
    with pytest.raises(ValueError, match="valid: ffhq, artist, uniform"):
        cameras.sample_poses(3, generator=g, kind="nosuch")
