"""3DAvatarGAN's TPS of the front plane (Sec. 3.4): the spline, its net, the deformed generator."""
import pytest
import torch

from portraitlib import cameras
from portraitlib.avatar3d import alignment
from portraitlib.avatar3d.tps import DeformedGenerator, ThinPlateSpline, TPSNet
from portraitlib.device import seeded_build
from portraitlib.nets import configs
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.training.warm3d import frontal_labels


def smoke_pair() -> tuple[TriPlaneGenerator, DeformedGenerator]:
    config = configs.named("smoke")
    with seeded_build(0, "test-tps"):
        g = TriPlaneGenerator(config=config).eval()
        tps = TPSNet(channels=config.plane_channels, w_dim=config.w_dim, resolution=config.plane_resolution)
    return g, DeformedGenerator(generator=g, tps=tps)


def test_zero_displacements_leave_the_plane_and_a_translation_shifts_it_without_bending():
    spline = ThinPlateSpline(grid=4, resolution=16)
    plane = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(spline.warp(plane, torch.zeros(2, 16, 2)), plane)
    shift = torch.zeros(1, 16, 2)
    shift[..., 0] = 2 / 16  # one pixel along x
    assert spline.bending(shift).abs().max() < 1e-5
    assert torch.allclose(spline.warp(plane[:1], shift)[..., :-1], plane[:1, ..., 1:], atol=1e-5)


def test_the_spline_interpolates_its_control_points_and_bends_when_they_move_apart():
    spline = ThinPlateSpline(grid=3, resolution=8)
    offsets = 0.1 * torch.randn(1, 9, 2, generator=torch.Generator().manual_seed(1))
    controls = spline.controls
    basis = torch.cat([_u(controls, controls), torch.ones(9, 1), controls], 1)  # [K, P] at the controls
    k = len(controls)
    system = torch.zeros(k + 3, k + 3, dtype=torch.float64)
    system[:k] = basis.double()
    system[k:, :k] = basis[:, k:].double().t()
    coefficients = torch.linalg.solve(system, torch.cat([offsets[0].double(), torch.zeros(3, 2, dtype=torch.float64)]))
    assert torch.allclose((basis.double() @ coefficients), offsets[0].double(), atol=1e-8)
    assert spline.bending(offsets).item() > 0
    assert torch.allclose(spline.bending(2 * offsets), 4 * spline.bending(offsets))


def _u(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r2 = (a[:, None] - b[None]).square().sum(-1)
    return r2 * torch.log(r2.clamp_min(1e-12))


def test_a_new_tps_net_is_the_identity_warp_and_the_deformed_g_renders_as_g():
    g, deformed = smoke_pair()
    z = torch.randn(2, g.config.z_dim, generator=torch.Generator().manual_seed(2))
    ws = g.mapping(z, frontal_labels(2, "cpu"))
    labels = cameras.labels_from_angles(torch.tensor([0.0, 20.0]), torch.zeros(2))
    with torch.no_grad():
        assert deformed.offsets(ws, g.planes(ws)).abs().max() == 0
        plain = g.synthesis(ws, labels, deterministic=True)
        warped = deformed.synthesis(ws, labels, deterministic=True)
    assert torch.allclose(plain["image"], warped["image"], atol=1e-5)
    assert deformed.bending(ws).abs().max() < 1e-8


def test_only_the_tps_learns_and_a_displacement_moves_only_the_front_plane():
    g, deformed = smoke_pair()
    with torch.no_grad():
        deformed.tps.mlp[-1].bias.normal_(0, 1, generator=torch.Generator().manual_seed(3))
    z = torch.randn(2, g.config.z_dim, generator=torch.Generator().manual_seed(4))
    ws = g.mapping(z, frontal_labels(2, "cpu"))
    planes, moved = g.planes(ws), deformed.planes(ws)
    assert torch.equal(planes[:, 1:], moved[:, 1:]) and not torch.allclose(planes[:, 0], moved[:, 0])
    offsets = deformed.offsets(ws, planes)
    assert offsets.abs().max() <= deformed.tps.max_offset
    labels = cameras.labels_from_angles(torch.zeros(2), torch.zeros(2))
    (deformed.synthesis(ws, labels)["image"].mean() + deformed.bending(ws).mean()).backward()
    assert all(p.grad is None for p in g.parameters())
    assert all(p.grad is not None for p in deformed.tps.mlp.parameters())


def test_landmark_error_needs_matching_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        alignment.landmark_error(torch.zeros(2, 3, 16, 16), torch.zeros(3, 3, 16, 16))
    blank = alignment.landmark_error(torch.zeros(2, 3, 32, 32), torch.zeros(2, 3, 32, 32))
    assert blank.shape == (2,) and blank.isnan().all(), "no face: no geometry to compare"


def test_report_states_the_tps_rows_and_verdicts_and_a_missing_face_mesh():
    from portraitlib import stats
    from portraitlib.avatar3d.claims import report_claims

    better = stats.paired_bootstrap([0.01, 0.012, 0.011], [0.02, 0.021, 0.019])
    row = {"lpips_vgg_to_truth": 0.4, "landmark_error": 0.02}
    values = {"tps": {"per_style": {"anime": {"3DAvatarGAN": row, "+ TPS": row | {"landmark_error": None}}},
                      "claims": {"anime: landmark_error with TPS below the method's":
                                 better | {"verdict": stats.below(better).value}}}}
    (title, verdict, text), = report_claims(values)
    assert "Sec. 3.4" in title and verdict is stats.Verdict.HOLDS
    assert "anime: LPIPS 0.400 -> 0.400, face-mesh error 0.0200 -> -" in text and "holds (-0.0" in text
