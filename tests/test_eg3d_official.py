"""Our TriPlaneGenerator against the official EG3D code: weights and renders made by the official
TriPlaneGenerator (SuperresolutionHybrid8XDC head, small backbone; tests/data/eg3d_reference/README.md
says how), loaded through our official-pickle loader and rendered with the same z, cameras and
deterministic sampling; and rays that follow each label's intrinsics."""
from pathlib import Path

import numpy as np
import pytest
import torch

from portraitlib import cameras
from portraitlib.nets import configs
from portraitlib.nets.checkpoints import OfficialCheckpoint, load_eg3d_pickle, load_into
from portraitlib.nets.superres import SuperResolution
from portraitlib.nets.triplane import TriPlaneGenerator

REFERENCE = Path(__file__).parent / "data" / "eg3d_reference"


def config_of(ck: OfficialCheckpoint) -> configs.TriPlaneConfig:
    """Our config for the fixture's recorded official kwargs (the SR head is the paper's)."""
    kw, rk = ck.init_kwargs, ck.rendering_kwargs
    assert rk["superresolution_module"].endswith(".SuperresolutionHybrid8XDC") and kw["sr_num_fp16_res"] > 0
    assert rk["superresolution_noise_mode"] == "none" and rk["sr_antialias"] and kw["img_resolution"] == 512
    return configs.TriPlaneConfig(
        z_dim=kw["z_dim"], w_dim=kw["w_dim"], c_dim=kw["c_dim"], mapping_layers=kw["mapping_kwargs"]["num_layers"],
        channel_base=kw["channel_base"], channel_max=kw["channel_max"],
        neural_rendering_resolution=ck.neural_rendering_resolution, coarse_samples=rk["depth_resolution"],
        fine_samples=rk["depth_resolution_importance"], ray_start=rk["ray_start"], ray_end=rk["ray_end"],
        box_warp=rk["box_warp"], c_scale=rk["c_scale"])


@pytest.fixture(scope="module")
def rendered():
    """(our outputs, the official ones): 2 renders, (N, 3, 512, 512) images stored in fp16."""
    ck = load_eg3d_pickle(REFERENCE / "G_ema.pkl")
    g = TriPlaneGenerator(config=config_of(ck)).eval()
    load_into(g, ck.state_dict)
    ref = {k: torch.from_numpy(v) for k, v in np.load(REFERENCE / "reference.npz").items()}
    with torch.no_grad():
        out = g(ref["z"], ref["c"], truncation_psi=float(ref["truncation_psi"]), deterministic=True)
    return out, ref


def test_raw_image_and_depth_match_the_official_renderer(rendered):
    out, ref = rendered
    assert not torch.equal(ref["c"][0, 16:], ref["c"][1, 16:]), "the second camera has other intrinsics"
    for key in ("image_raw", "image_depth"):
        assert out[key].shape == ref[key].shape
        assert (out[key] - ref[key]).abs().max() <= 2e-5, key


def test_super_resolved_image_matches_the_official_head(rendered):
    out, ref = rendered
    image, expected = out["image"], ref["image"].float()
    assert image.shape == expected.shape == (2, 3, 512, 512)
    # The reference is stored in fp16: its rounding (<= 2^-11 relative) bounds the agreement.
    assert ((image - expected).abs() <= expected.abs() * 2 ** -11 + 3e-4).all()
    psnr = 10 * torch.log10(4 / (image - expected).square().mean(dim=(1, 2, 3)))
    assert (psnr >= 70).all(), psnr  # measured 74.2 and 75.7 dB (the old 256 px head: 27.0 and 27.9)


def test_super_resolution_upsamples_in_block0_only_from_a_quarter_size_input():
    paper, smoke = TriPlaneGenerator(config=configs.PAPER), TriPlaneGenerator(config=configs.SMOKE)
    assert paper.superresolution.block0.up and paper.superresolution.input_resolution == 128
    assert not smoke.superresolution.block0.up and smoke.superresolution.block1.up
    assert paper.superresolution.block1.conv1.conv_clamp == 256
    with pytest.raises(ValueError, match="1/2 or 1/4"):
        SuperResolution(in_channels=8, w_dim=8, input_resolution=16, img_resolution=48, channels=(8, 8))


def test_rays_follow_the_label_intrinsics():
    c2w = cameras.orbit_camera(torch.tensor([10.0]), torch.tensor([-4.0]))
    k = cameras.intrinsics(1)
    assert torch.equal(cameras.rays(c2w, 8, intrinsics=k)[1], cameras.rays(c2w, 8)[1])
    shifted = k.clone()
    shifted[:, 0, 2] += 2 / 8  # the principal point 2 pixels right: the image moves 2 pixels right
    a = cameras.rays(c2w, 8, intrinsics=k)[1].view(8, 8, 3)
    b = cameras.rays(c2w, 8, intrinsics=shifted)[1].view(8, 8, 3)
    assert torch.allclose(b[:, 2:], a[:, :-2], atol=1e-6) and not torch.allclose(a, b, atol=1e-2)
    wide = k.clone()
    wide[:, :2, :2] /= 2  # half the focal length: the corner rays turn outwards
    corner = cameras.rays(c2w, 8, intrinsics=wide)[1][0, 0] @ cameras.rays(c2w, 8)[1][0, 0]
    assert corner < 0.999


def test_the_generator_renders_through_the_label_intrinsics():
    torch.manual_seed(0)
    g = TriPlaneGenerator(config=configs.SMOKE).eval()
    r = configs.SMOKE.neural_rendering_resolution
    c = cameras.labels_from_angles(torch.zeros(1), torch.zeros(1))
    shifted = c.clone()
    shifted[:, 16 + 2] += 3 / r  # cx: 3 pixels to the right
    ws = g.mapping(torch.randn(1, configs.SMOKE.z_dim), c)
    with torch.no_grad():
        a, b = (g.synthesis(ws, label, deterministic=True)["image_raw"] for label in (c, shifted))
    assert torch.allclose(b[..., 3:], a[..., :-3], atol=1e-5)
    assert (b - a).abs().max() > 1e-3
