"""The tri-plane generator and its parts: official layout, W+ path, renderer sanity."""
import json
import math
from pathlib import Path

import pytest
import torch

from portraitlib import cameras
from portraitlib.nets import configs, volume
from portraitlib.nets.layers import downsample2d, fir_filter, modulated_conv2d, upsample2d
from portraitlib.nets.stylegan2 import StyleGAN2Generator
from portraitlib.nets.triplane import TriPlaneGenerator

SPEC = Path(__file__).resolve().parents[2] / "shared" / "specs" / "eg3d_ffhq512-128_state_dict.json"


@pytest.fixture(scope="module")
def smoke_g():
    torch.manual_seed(0)
    return TriPlaneGenerator(config=configs.SMOKE).eval()


def frontal(n):
    return cameras.labels_from_angles(torch.zeros(n), torch.zeros(n))


def test_paper_config_has_the_official_names_shapes_and_kinds():
    if not SPEC.exists():
        pytest.skip(f"{SPEC} not present (it lives in the study's shared/ folder)")
    spec = json.loads(SPEC.read_text())
    g = TriPlaneGenerator(config=configs.PAPER)
    params, buffers = dict(g.named_parameters()), dict(g.named_buffers())
    ours = {n: (list(t.shape), "parameter" if n in params else "buffer") for n, t in {**params, **buffers}.items()}
    theirs = {e["name"]: (e["shape"], e["kind"]) for e in spec["entries"]}
    assert ours == theirs
    assert sum(p.numel() for p in params.values()) == spec["num_parameters"] == 30_662_136
    assert g.num_ws == 14 and g.num_ws_plus == 17


def test_official_layout_state_dict_loads_without_mismatch():
    g = TriPlaneGenerator(config=configs.SMOKE)
    other = TriPlaneGenerator(config=configs.SMOKE)
    result = other.load_state_dict(g.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    c, z = frontal(2), torch.randn(2, configs.SMOKE.z_dim)
    a = g(z, c, deterministic=True)["image"]
    b = other(z, c, deterministic=True)["image"]
    assert torch.equal(a, b)


def test_equalised_lr_gains_follow_the_official_convention():
    g = TriPlaneGenerator(config=configs.PAPER)
    fc0 = g.backbone.mapping.fc0
    assert fc0.weight_gain == pytest.approx(0.01 / math.sqrt(1024)) and fc0.bias_gain == 0.01
    assert g.backbone.mapping.embed.weight_gain == pytest.approx(1 / math.sqrt(25))
    affine = g.backbone.synthesis.b4.conv1.affine
    assert affine.bias.detach().eq(1).all(), "style affines start at bias 1"
    assert g.decoder.net[0].weight_gain == pytest.approx(1 / math.sqrt(32))


def test_outputs_shapes_and_w_plus_super_resolution_codes(smoke_g):
    n, cfg = 2, configs.SMOKE
    c = frontal(n)
    ws = smoke_g.mapping(torch.randn(n, cfg.z_dim), c)
    assert ws.shape == (n, 14 if cfg is configs.PAPER else smoke_g.num_ws, cfg.w_dim)
    out = smoke_g.synthesis(ws, c, deterministic=True)
    assert out["image"].shape == (n, 3, 32, 32) and out["image_raw"].shape == (n, 3, 16, 16)
    assert out["image_depth"].shape == (n, 1, 16, 16)
    depth = out["image_depth"]
    assert (depth >= cfg.ray_start).all() and (depth <= cfg.ray_end + 0.03).all()
    # The official path repeats the last code for super-resolution; W+ feeds its own three codes.
    plus = torch.cat([ws, ws[:, -1:].repeat(1, 3, 1)], 1)
    same = smoke_g.synthesis(plus, c, deterministic=True)
    assert torch.allclose(same["image"], out["image"], atol=1e-6)
    plus[:, smoke_g.num_ws:] += torch.randn(n, 3, cfg.w_dim)
    changed = smoke_g.synthesis(plus, c, deterministic=True)
    assert torch.equal(changed["image_raw"], out["image_raw"]), "SR codes must not touch the raw render"
    assert (changed["image"] - out["image"]).abs().max() > 1e-4
    with pytest.raises(ValueError, match="14|codes"):
        smoke_g.synthesis(ws[:, :5], c)


def test_sampling_is_random_unless_seeded_or_deterministic(smoke_g):
    c, ws = frontal(2), smoke_g.mapping(torch.randn(2, configs.SMOKE.z_dim), frontal(2))
    a, b = smoke_g.synthesis(ws, c)["image_raw"], smoke_g.synthesis(ws, c)["image_raw"]
    assert not torch.equal(a, b), "stratified and importance sampling are random, as in EG3D"
    s1 = smoke_g.synthesis(ws, c, generator=torch.Generator().manual_seed(1))["image_raw"]
    s2 = smoke_g.synthesis(ws, c, generator=torch.Generator().manual_seed(1))["image_raw"]
    d1, d2 = (smoke_g.synthesis(ws, c, deterministic=True)["image_raw"] for _ in range(2))
    assert torch.equal(s1, s2) and torch.equal(d1, d2)


def test_truncation_psi_zero_returns_w_avg(smoke_g):
    smoke_g.backbone.mapping.w_avg.normal_()
    ws = smoke_g.mapping(torch.randn(3, configs.SMOKE.z_dim), frontal(3), truncation_psi=0.0)
    assert torch.allclose(ws, smoke_g.backbone.mapping.w_avg.expand_as(ws))


def test_official_plane_layout_has_no_yz_plane():
    planes = torch.zeros(1, 3, 1, 8, 8)
    planes[:, 0] = 1.0  # only the first plane carries signal
    points = torch.tensor([[[0.1, 0.2, 0.3]]])
    assert volume.sample_triplanes(planes, points).item() == pytest.approx(1 / 3)
    # In the official layout, planes 2 and 3 both see only x and z: moving along y changes neither.
    planes = torch.randn(1, 3, 1, 8, 8)
    official = [volume.sample_triplanes(planes, torch.tensor([[[0.1, y, 0.3]]])) for y in (-0.2, 0.2)]
    corrected = [volume.sample_triplanes(planes, torch.tensor([[[0.1, y, 0.3]]]), layout=volume.PLANES_CORRECTED)
                 for y in (-0.2, 0.2)]
    planes[:, 0] = 0
    official_without_xy = [volume.sample_triplanes(planes, torch.tensor([[[0.1, y, 0.3]]])) for y in (-0.2, 0.2)]
    corrected_without_xy = [volume.sample_triplanes(planes, torch.tensor([[[0.1, y, 0.3]]]), layout=volume.PLANES_CORRECTED)
                            for y in (-0.2, 0.2)]
    assert torch.allclose(*official_without_xy) and not torch.allclose(*corrected_without_xy)
    assert not torch.allclose(*official) and not torch.allclose(*corrected)


def sphere_field(radius=0.3, density=200.0):
    def field(points):
        inside = (points.norm(dim=-1, keepdim=True) < radius).float()
        colors = torch.cat([inside, 1 - inside, torch.zeros_like(inside)], -1)
        return colors, inside * density - (1 - inside) * 20  # raw sigma; softplus(raw - 1) ~ 0 outside
    return field


def test_marcher_finds_an_analytic_sphere():
    labels = cameras.labels_from_angles(torch.tensor([0.0, 40.0]), torch.tensor([0.0, -15.0]))
    origins, dirs = cameras.rays(cameras.split_labels(labels)[0], 24)
    out = volume.render_rays(sphere_field(), origins, dirs, near=2.25, far=3.3, coarse=48, fine=48,
                             generator=torch.Generator().manual_seed(0))
    # Exact ray-sphere entry distance for each ray.
    b = (origins * dirs).sum(-1)
    disc = b * b - (origins.square().sum(-1) - 0.3 ** 2)
    hits = disc > 0
    entry = -b - disc.clamp_min(0).sqrt()
    opacity = out["weights"].sum(2).squeeze(-1)
    assert (opacity[hits] > 0.99).float().mean() > 0.97 and (opacity[~hits] < 0.01).all()
    clearly_inside = hits & (disc > 0.02)
    assert (out["depth"].squeeze(-1)[clearly_inside] - entry[clearly_inside]).abs().max() < 0.03
    # Colours are averaged over each interval, so the interval that crosses the surface mixes the
    # outside colour in (mip marching, at worst half and half): mostly, but not purely, red.
    red = (out["features"][..., 0] + 1) / 2
    assert (red[clearly_inside] > 0.5).all() and red[clearly_inside].mean() > 0.8


def test_marcher_opacity_of_a_constant_slab():
    # Constant raw density s over the whole ray: alpha accumulates to 1 - exp(-softplus(s - 1) * L).
    n_rays, length = 4, 3.3 - 2.25
    origins, dirs = torch.zeros(1, n_rays, 3), torch.tensor([0.0, 0.0, 1.0]).expand(1, n_rays, 3)
    for raw in (-2.0, 0.0, 1.5):
        field = lambda p, raw=raw: (torch.ones(*p.shape[:2], 3), torch.full((*p.shape[:2], 1), raw))
        out = volume.render_rays(field, origins, dirs, near=2.25, far=3.3, coarse=64, fine=0, deterministic=True)
        expected = 1 - math.exp(-math.log1p(math.exp(raw - 1)) * length)  # samples span (D-1) bins = length
        assert out["weights"].sum(2).mean().item() == pytest.approx(expected, rel=1e-3)


def test_marcher_depth_of_an_empty_ray_is_the_far_end_and_passes_no_nan_gradient():
    # Raw density -200: softplus underflows, every alpha is exactly 0, the ray's weight is 0 (0 / 0 in
    # the weighted mean). EG3D puts such a ray at the far end; its gradient must not be NaN.
    depths = torch.linspace(2.25, 3.3, 16).reshape(1, 1, 16, 1).expand(1, 2, 16, 1)
    raw = torch.stack([torch.full((16, 1), -200.0), torch.full((16, 1), 2.0)]).unsqueeze(0).requires_grad_(True)
    _, depth, weights = volume.march(torch.zeros(1, 2, 16, 3), raw, depths)
    assert weights[0, 0].sum() == 0 and depth[0, 0].item() == pytest.approx(3.3)
    assert 2.25 < depth[0, 1].item() < 3.3
    depth.sum().backward()
    assert torch.isfinite(raw.grad).all() and raw.grad[0, 1].abs().sum() > 0


def test_fir_resampling_and_up_conv_preserve_constants():
    f = fir_filter()
    x = torch.ones(1, 2, 8, 8)
    assert torch.allclose(upsample2d(x, f)[..., 2:-2, 2:-2], torch.ones(1))
    assert torch.allclose(downsample2d(x, f)[..., 1:-1, 1:-1], torch.ones(1))
    w = torch.zeros(1, 2, 3, 3)
    w[:, :, 1, 1] = 1.0  # identity-like kernel summing two channels
    up = modulated_conv2d(x, w, torch.ones(1, 2), demodulate=False, up=True, padding=1, resample_filter=f)
    assert up.shape == (1, 1, 16, 16) and torch.allclose(up[..., 3:-3, 3:-3], torch.full((1,), 2.0))


def test_stylegan2_generator_runs_at_small_size():
    g = StyleGAN2Generator(z_dim=32, w_dim=32, img_resolution=32, channel_base=512, channel_max=32, mapping_layers=2)
    assert g(torch.randn(2, 32)).shape == (2, 3, 32, 32) and g.num_ws == 8


def test_pose_conditioning_swap_probability():
    from portraitlib.nets.triplane import swap_conditioning

    c = cameras.labels_from_angles(torch.linspace(-40, 40, 400), torch.zeros(400))
    g = torch.Generator().manual_seed(0)
    assert torch.equal(swap_conditioning(c, probability=0.0, generator=g), c)
    swapped = swap_conditioning(c, probability=0.5, generator=g)
    changed = (swapped != c).any(1).float().mean().item()
    assert 0.4 < changed < 0.6
    assert all(any(torch.equal(row, other) for other in c) for row in swapped[:20]), "rows come from the batch"


def test_cameras_follow_the_device_and_dtype_of_their_inputs():
    labels = cameras.labels_from_angles(torch.tensor([10.0]), torch.tensor([5.0])).double()
    origins, dirs = cameras.rays(cameras.split_labels(labels)[0], 4)
    assert origins.dtype == dirs.dtype == torch.float64
    assert cameras.angles_from_labels(labels).shape == (1, 3)
