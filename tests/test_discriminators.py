"""Discriminators: shapes, official names, conditioning, R1 on both inputs, the blur schedule."""
from __future__ import annotations

import math

import pytest
import torch

from portraitlib.losses import r1_penalty
from portraitlib.nets.discriminators import (Discriminator, DiscriminatorBlock, DiscriminatorEpilogue,
                                             DualDiscriminator, MinibatchStdLayer, blur_kernel_1d, blur_sigma_at,
                                             eg3d_paper_config, gaussian_blur)

SMALL = dict(img_resolution=64, channel_base=512, channel_max=32)


def small_dual(**kw) -> DualDiscriminator:
    torch.manual_seed(0)
    return DualDiscriminator(**{**SMALL, **kw})


def inputs(n=4, *, raw=16, grad=False, seed=1):
    g = torch.Generator().manual_seed(seed)
    img = {"image": torch.randn(n, 3, 64, 64, generator=g), "image_raw": torch.randn(n, 3, raw, raw, generator=g)}
    if grad:
        for v in img.values():
            v.requires_grad_(True)
    return img, torch.randn(n, 25, generator=g)


def test_block_and_epilogue_shapes():
    first = DiscriminatorBlock(in_channels=0, tmp_channels=8, out_channels=16, img_channels=6)
    assert first(None, torch.randn(2, 6, 32, 32)).shape == (2, 16, 16, 16)
    mid = DiscriminatorBlock(in_channels=16, tmp_channels=16, out_channels=32, img_channels=6)
    assert mid(torch.randn(2, 16, 16, 16)).shape == (2, 32, 8, 8)
    assert not hasattr(mid, "fromrgb") and mid.skip.bias is None
    epi = DiscriminatorEpilogue(in_channels=32, cmap_dim=0)
    assert epi(torch.randn(4, 32, 4, 4)).shape == (4, 1)


def test_minibatch_std_groups_like_official():
    x = torch.randn(8, 4, 2, 2)
    y = MinibatchStdLayer(4)(x)
    assert y.shape == (8, 5, 2, 2)
    # group of sample 0 is {0, 2, 4, 6} (stride N / G), as the official reshape (G, -1, ...) does
    expected = x[[0, 2, 4, 6]].std(0, unbiased=False).mean()
    assert torch.allclose(y[0, 4], expected.expand(2, 2), atol=1e-5)
    assert torch.allclose(y[6, 4], y[0, 4]) and not torch.allclose(y[1, 4], y[0, 4])
    assert MinibatchStdLayer(4)(torch.randn(6, 4, 2, 2)).shape == (6, 5, 2, 2)  # 6 not divisible by 4: G = 3


def test_official_names_and_channels():
    d = small_dual()
    sd = d.state_dict()
    assert d.block_resolutions == [64, 32, 16, 8]
    assert sd["b64.fromrgb.weight"].shape == (8, 6, 1, 1)  # 512 // 64 = 8 channels, 6 = image + raw
    assert sd["b64.conv1.weight"].shape == (16, 8, 3, 3) and sd["b64.skip.weight"].shape == (16, 8, 1, 1)
    assert "b32.fromrgb.weight" not in sd and "b64.skip.bias" not in sd
    assert sd["b4.conv.weight"].shape == (32, 33, 3, 3) and sd["b4.fc.weight"].shape == (32, 32 * 16)
    assert sd["b4.out.weight"].shape == (32, 32)  # cmap_dim = channels at 4
    assert sd["mapping.embed.weight"].shape == (32, 25) and "mapping.fc7.weight" in sd
    assert "mapping.w_avg" not in sd and "resample_filter" in sd and "b64.resample_filter" in sd
    plain = Discriminator(c_dim=0, **SMALL)
    assert plain.state_dict()["b4.out.weight"].shape == (1, 32) and not hasattr(plain, "mapping")


def test_paper_size_builds_and_parameter_count():
    d = eg3d_paper_config().build()
    n = sum(p.numel() for p in d.parameters())
    mapping = sum(p.numel() for k, p in d.named_parameters() if k.startswith("mapping."))
    print(f"paper DualDiscriminator: {n:,} parameters ({mapping:,} in the camera mapping)")
    assert d.block_resolutions == [512, 256, 128, 64, 32, 16, 8]
    assert d.b512.fromrgb.weight.shape == (64, 6, 1, 1) and d.b8.conv1.weight.shape == (512, 512, 3, 3)
    assert n == 31_359_744 and mapping == 2_114_560


def test_small_forward_backward():
    d = small_dual()
    img, c = inputs()
    logits = d(img, c)
    assert logits.shape == (4, 1) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None for p in d.parameters())
    plain = Discriminator(c_dim=0, **SMALL)
    assert plain(torch.randn(2, 3, 64, 64)).shape == (2, 1)


def test_conditioning_changes_logits():
    d = small_dual()
    img, c = inputs()
    with torch.no_grad():
        a, b = d(img, c), d(img, c + torch.randn_like(c))
    assert not torch.allclose(a, b, atol=1e-4)


def test_raw_is_resized_and_used():
    d = small_dual()
    img, c = inputs()
    other = dict(img, image_raw=img["image_raw"].flip(-1))
    with torch.no_grad():
        assert not torch.allclose(d(img, c), d(other, c), atol=1e-5)
        same = dict(img, image_raw=torch.nn.functional.interpolate(
            img["image_raw"], size=(64, 64), mode="bilinear", align_corners=False, antialias=True))
        assert torch.allclose(d(img, c), d(same, c), atol=1e-5)  # a raw image already at 64 is used as is


@pytest.mark.parametrize("blur", [0.0, 1.5])
def test_r1_on_image_and_raw(blur):
    d = small_dual()
    img, c = inputs(grad=True)
    before = {k: v.detach().clone() for k, v in img.items()}
    logits = d(img, c, blur_sigma=blur)
    penalty = r1_penalty(logits, [img["image"], img["image_raw"]])
    assert penalty.ndim == 0 and penalty > 0
    grads = torch.autograd.grad(logits.sum(), [img["image"], img["image_raw"]], retain_graph=True)
    assert all(g.abs().sum() > 0 for g in grads)  # both inputs reach the logits
    penalty.backward()  # second-order graph through the whole D
    assert d.b4.fc.weight.grad is not None
    assert all(torch.equal(before[k], img[k].detach()) for k in img)  # no in-place edits of the inputs


def test_blur_kernel_and_effect():
    f = blur_kernel_1d(2.0)
    assert f.shape == (13,) and math.isclose(f.sum().item(), 1, abs_tol=1e-6)
    assert torch.allclose(f, f.flip(0)) and f.argmax() == 6
    assert blur_kernel_1d(2.0, kernel="eg3d").shape == (13,)
    x = torch.zeros(1, 1, 21, 21)
    x[0, 0, 10, 10] = 1
    y = gaussian_blur(x, 2.0)
    assert torch.allclose(y[0, 0], _outer_padded(f, 21), atol=1e-6)  # separable: the outer product
    assert torch.equal(gaussian_blur(x, 0.1), x)  # a one-tap kernel is the identity
    d = small_dual()
    img, c = inputs()
    with torch.no_grad():
        assert not torch.allclose(d(img, c), d(img, c, blur_sigma=2.0), atol=1e-5)


def _outer_padded(f: torch.Tensor, size: int) -> torch.Tensor:
    k = f.shape[0] // 2
    out = torch.zeros(size, size)
    out[10 - k:11 + k, 10 - k:11 + k] = f[:, None] * f[None, :]
    return out


def test_blur_schedule():
    steps = [0, 10, 50, 100, 150, 199, 200, 250, 1000]
    sigmas = [blur_sigma_at(s) for s in steps]
    assert sigmas[0] == 10 and math.isclose(sigmas[3], 5)
    assert all(a >= b for a, b in zip(sigmas, sigmas[1:]))
    assert sigmas[6:] == [0.0, 0.0, 0.0]
    assert blur_sigma_at(5, fade_kimg=0) == 0.0
    assert blur_sigma_at(20, fade_kimg=40, start_sigma=4) == 2.0
