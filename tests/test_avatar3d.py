"""3DAvatarGAN (seed 002): the tri-plane swap measures and the camera alignment's pieces."""
import numpy as np
import pytest
import torch

from portraitlib import cameras
from portraitlib.avatar3d import alignment, planes
from portraitlib.device import seeded_build
from portraitlib.nets import configs
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.training.warm3d import frontal_labels


def smoke_generator() -> TriPlaneGenerator:
    with seeded_build(0, "test-avatar3d"):
        g = TriPlaneGenerator(config=configs.named("smoke"))
    return g.eval().requires_grad_(False)


def test_chamfer_is_zero_on_itself_symmetric_and_nan_when_empty():
    a, b = torch.rand(20, 3, generator=torch.Generator().manual_seed(0)), torch.rand(30, 3)
    assert planes.chamfer(a, a).item() == 0
    assert torch.isclose(planes.chamfer(a, b), planes.chamfer(b, a))
    grid = torch.stack([torch.arange(10.0), torch.zeros(10), torch.zeros(10)], 1)  # points 1 apart
    assert torch.isclose(planes.chamfer(grid, grid + torch.tensor([0.1, 0, 0])), torch.tensor(0.1), atol=1e-6)
    assert planes.chamfer(a, torch.zeros(0, 3)).isnan()


def test_depth_points_lie_on_the_rays_at_their_depth():
    labels = cameras.labels_from_angles(torch.tensor([0.0]), torch.tensor([0.0]))
    depth, opacity = torch.full((1, 1, 4, 4), 2.0), torch.ones(1, 1, 4, 4)
    opacity[0, 0, 0, 0] = 0  # a pixel that shows no head
    (points,) = planes.depth_points(depth, opacity, labels)
    origin = cameras.split_labels(labels)[0][0, :3, 3]
    assert points.shape == (15, 3)
    assert torch.allclose((points - origin).norm(dim=1), torch.full((15,), 2.0), atol=1e-5)


def test_swapping_planes_between_a_head_and_itself_moves_nothing_and_renders_both_heads():
    g = smoke_generator()
    ws = g.mapping(torch.randn(4, g.config.z_dim, generator=torch.Generator().manual_seed(1)), frontal_labels(4, "cpu"))
    labels = cameras.labels_from_angles(torch.tensor([0.0, 20.0]), torch.zeros(2))
    same = planes.swap_planes(g, ws[:2], ws[:2], labels)
    assert same["image"].shape == (3, 2, 2) and same["image"].abs().max() < 1e-5
    moved = planes.swap_planes(g, ws[:2], ws[2:], labels)
    assert moved["raw"].shape == (5, 2, 2, 3, 16, 16) and moved["depth_map"].shape == (5, 2, 2, 1, 16, 16)
    own_b = g.synthesis(ws[2:].repeat_interleave(2, 0), labels.repeat(2, 1), deterministic=True)["image_raw"]
    assert torch.allclose(moved["raw"][1].flatten(0, 1), ((own_b + 1) / 2).clamp(0, 1), atol=1e-5)
    assert (moved["image"] > 0).all(), "a different plane changes the render"


def test_camera_moves_the_orbit_and_the_ray_bounds_with_it():
    camera = alignment.Camera(radius=cameras.RADIUS * 1.15, pitch=8.0)
    angles = torch.tensor([[0.0, 0.0, 0.0], [20.0, -5.0, 0.0]])
    seen = cameras.angles_from_labels(camera.labels(angles))
    assert torch.allclose(seen[:, :2], angles[:, :2] + torch.tensor([0.0, 8.0]), atol=1e-3)
    origins = camera.cam2world(angles)[:, :3, 3]
    assert torch.allclose(origins.norm(dim=1), torch.full((2,), camera.radius), atol=1e-4)
    near, far = camera.ray_bounds(configs.named("mini"))
    assert np.isclose(near - configs.named("mini").ray_start, camera.radius - cameras.RADIUS) and far - near > 0


def test_layout_distance_needs_faces_in_half_the_images():
    target = np.zeros((len(alignment.KEYPOINTS), 2))
    near = alignment.Layout(layout=np.full_like(target, 0.1), found=0.5)
    assert np.isclose(alignment.layout_distance(near, target), 0.02)
    assert alignment.layout_distance(alignment.Layout(layout=target, found=0.4), target) == 1.0


def test_report_claims_follow_the_recorded_numbers():
    from portraitlib import stats
    from portraitlib.avatar3d.claims import report_claims

    below = stats.paired_bootstrap([0.2, 0.3, 0.25], [0.8, 0.9, 0.85])
    planes_ = {"image": {"front (x, y)": 0.85, "(x, z)": 0.25}, "pairs_measured": 3,
               "claims": {"image: (x, z) below the front plane": below | {"verdict": stats.below(below).value}}}
    row = {"radius": 3.08, "pitch": 7.9, "radius_error": -0.008, "pitch_error_deg": -0.1}
    far = row | {"pitch": 17.0, "pitch_error_deg": 9.0}
    alignment_ = {"truth": {"radius": 3.105, "pitch": 8.0}, "start": {"radius": 2.7, "pitch": 0.0},
                  "per_look": {"real": row, "cartoon": far}}
    (_, plane_verdict, plane_text), (_, aligned, text) = report_claims({"planes": planes_, "alignment": alignment_})
    assert plane_verdict is stats.Verdict.HOLDS and "front (x, y) 85%" in plane_text
    assert aligned is False and "for 1 of 2 looks" in text, "cartoon's pitch is further from the truth than G's own"


def test_texture_regulariser_is_zero_for_g_itself_and_grows_with_a_changed_style_layer():
    from portraitlib.avatar3d.regularisers import Regularisers, texture_layers

    source, target = smoke_generator(), smoke_generator()
    names = texture_layers(target)
    assert names and all(n.startswith(("superresolution.", "backbone.synthesis.b16.")) for n in names)
    assert not any(n.startswith("backbone.synthesis.b8.") for n in names), "coarse blocks are geometry"
    reg = Regularisers(source=source, target=target, texture=1.0, depth=0.0)
    ws = target.mapping(torch.randn(3, target.config.z_dim, generator=torch.Generator().manual_seed(2)),
                        frontal_labels(3, "cpu"))
    assert reg.style_change(ws).abs().max() == 0
    with torch.no_grad():
        next(iter(names.values())).bias.add_(0.5)
    assert (reg.style_change(ws) > 0).all()
    with pytest.raises(ValueError, match="never negative"):
        Regularisers(source=source, target=target, texture=-1.0, depth=0.0)


def test_depth_regulariser_is_zero_for_a_flat_map_and_lower_for_more_relief():
    from portraitlib.avatar3d.regularisers import depth_flatness

    flat = torch.full((1, 1, 8, 8), 2.7)
    bumpy = flat.clone()
    bumpy[..., 2:6, 2:6] -= 0.2
    deeper = flat.clone()
    deeper[..., 2:6, 2:6] -= 0.4
    values = depth_flatness(torch.cat([flat, bumpy, deeper]))
    assert values[0].abs() < 1e-6 and values[0] > values[1] > values[2]


def test_depth_scores_of_g_against_its_own_depth_are_exact():
    from portraitlib.avatar3d.transfer import depth_scores

    g = smoke_generator()
    camera = alignment.Camera(radius=cameras.RADIUS * 1.1, pitch=4.0)
    angles = torch.tensor([[0.0, 0.0, 0.0], [15.0, -5.0, 0.0]])
    latents = torch.randn(2, 6, generator=torch.Generator().manual_seed(3))
    own = alignment.StyleSet(images=torch.zeros(2, 3, 16, 16), depth=torch.zeros(2, 1, 16, 16),
                             mask=torch.ones(2, 1, 16, 16), latents=latents, angles=angles, camera=camera)
    scores = depth_scores(g, own)
    truth = alignment.StyleSet(**{**own.__dict__, "depth": scores["depth"]})
    exact = depth_scores(g, truth)
    assert exact["depth_error"].abs().max() < 1e-5 and torch.allclose(exact["relief"], torch.ones(2), atol=1e-4)
    assert exact["images"].shape == (2, 3, 32, 32)
    shifted = depth_scores(g, alignment.StyleSet(**{**own.__dict__, "depth": scores["depth"] + 0.1}))
    assert torch.allclose(shifted["depth_error"], torch.full((2,), 0.1), atol=1e-4)


def test_camera_sources_hold_each_sources_cameras():
    from portraitlib.avatar3d.transfer import CameraSource, camera_sources

    truth = alignment.Camera(radius=cameras.RADIUS * 1.15, pitch=8.0)
    angles = torch.tensor([[0.0, 0.0, 0.0], [20.0, 5.0, 0.0]])
    sset = alignment.StyleSet(images=torch.zeros(2, 3, 8, 8), depth=torch.zeros(2, 1, 8, 8), mask=torch.ones(2, 1, 8, 8),
                              latents=torch.zeros(2, 4), angles=angles, camera=truth)
    found = alignment.Camera(radius=3.0, pitch=7.0)
    estimated = cameras.labels_from_angles(torch.tensor([1.0, 19.0]), torch.tensor([0.0, 4.0]))
    config = configs.named("smoke")
    sources = camera_sources(sset, aligned=found, poses=angles[:1], estimated=estimated, config=config)
    assert torch.equal(sources[CameraSource.TRUTH].fakes, sset.labels())
    assert torch.equal(sources[CameraSource.TRUTH].reals, sset.labels())
    assert sources[CameraSource.ALIGNED].reals is None and sources[CameraSource.DEFAULT].reals is None
    assert torch.allclose(sources[CameraSource.ALIGNED].fakes, found.labels(angles[:1]))
    assert sources[CameraSource.ALIGNED].ray_bounds == found.ray_bounds(config)
    assert torch.equal(sources[CameraSource.ESTIMATED].reals, estimated)
    with pytest.raises(ValueError, match="1 estimated cameras for 2 images"):
        camera_sources(sset, aligned=found, poses=angles, estimated=estimated[:1], config=config)


def test_report_states_the_adaptation_runs_and_their_verdicts():
    from portraitlib import stats
    from portraitlib.avatar3d.claims import report_claims

    flat = stats.paired_bootstrap([0.5, 0.6, 0.55], [0.9, 1.0, 0.95])
    row = {"lpips_vgg_to_truth": 0.2, "depth_error": 0.05, "relief": 0.9}
    values = {"adaptation": {"anime": {"3DAvatarGAN": row, "naive fine-tuning": row | {"relief": 0.5}}},
              "adaptation_claims": {"naive fine-tuning flattens": flat | {"verdict": stats.below(flat).value}}}
    values["adaptation_claims"]["aligned cameras: LPIPS below EG3D's default camera"] = {
        **flat, "mean": 0.1, "low": 0.05, "high": 0.2, "verdict": stats.Verdict.FAILS.value}
    (title, verdict, text), (camera_title, camera_verdict, camera_text) = report_claims(values)
    assert "Sec. 3.2" in title and verdict is stats.Verdict.HOLDS
    assert "anime naive fine-tuning: LPIPS 0.200, depth error 0.050, relief 0.50" in text and "holds (-0.4000" in text
    assert "cameras" in camera_title and camera_verdict is stats.Verdict.FAILS and "fails (+0.1000" in camera_text
    assert "default camera" not in text, "each comparison is stated under one claim"
