"""rosinality stylegan2-pytorch checkpoints (``.pt``) converted to our StyleGAN2Generator names."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from portraitlib.nets.checkpoints import _LIST_MAX, OfficialCheckpoint, _torch_load_weights
from portraitlib.nets.stylegan2 import StyleGAN2Generator
from portraitlib.nets.stylegan2_official import check_architecture
from portraitlib.nets.unpickle import CheckpointError

ROSINALITY_HINT = "Put the rosinality stylegan2-pytorch checkpoint (.pt) at that path."


def _infer_channels(channels: dict[int, int], name: str) -> tuple[int, int]:
    """(channel_base, channel_max) with min(base // res, max) == channels[res] at every resolution."""
    cmax = max(channels.values())
    below = [res for res in sorted(channels) if channels[res] < cmax]
    base = channels[below[0]] * below[0] if below else cmax * max(channels)
    if any(min(base // r, cmax) != c for r, c in channels.items()):
        raise CheckpointError(f"{name}: channel layout {channels} is not min(channel_base // res, channel_max)")
    return base, cmax


def convert_rosinality_state(rsd: dict[str, torch.Tensor], *, latent_avg: torch.Tensor | None = None,
                             name: str = "checkpoint") -> tuple[dict[str, torch.Tensor], dict, dict]:
    """rosinality stylegan2-pytorch ``Generator`` state_dict -> (our state_dict, init_kwargs, extras).

    Mapping (weights copied as stored; both codes keep randn / lr_mul weights and scale at run time
    by lr_mul / sqrt(fan_in), so no rescaling is needed):

    ========================================  ======================================================
    rosinality                                ours / official
    ========================================  ======================================================
    style.{i}.weight/bias (i = 1..L)          mapping.fc{i-1}.weight/bias   (style.0 is PixelNorm)
    latent_avg (top-level key)                mapping.w_avg                 (zeros if absent)
    input.input (1, C, 4, 4)                  synthesis.b4.const (C, 4, 4)
    conv1.*                                   synthesis.b4.conv1.*
    to_rgb1.*                                 synthesis.b4.torgb.*
    convs.{2k}.*, convs.{2k+1}.*              synthesis.b{2^(k+3)}.conv0.*, .conv1.*
    to_rgbs.{k}.*                             synthesis.b{2^(k+3)}.torgb.*
    <conv>.conv.weight (1, O, I, k, k)        <layer>.weight (O, I, k, k)
    <conv>.conv.modulation.weight/bias        <layer>.affine.weight/bias
    <conv>.noise.weight (1,)                  <layer>.noise_strength ()
    <conv>.activate.bias (O,)                 <layer>.bias (O,)
    <rgb>.bias (1, 3, 1, 1)                   <torgb>.bias (3,)
    noises.noise_{j} (1, 1, R, R)             noise_const (R, R) of the j-th conv (b4.conv1 is j = 0)
    convs.*.conv.blur.kernel, to_rgbs.*.upsample.kernel   checked to be 4 x the [1,3,3,1] filter;
                                              our resample_filter buffers are the normalised filter
    ========================================  ======================================================

    Up-sampling convs: rosinality (conv_transpose2d stride 2, un-flipped weight transposed to
    (I, O, k, k), then Blur pad (1, 1) with the 4x4 filter x 4) and the official conv2d_resample
    (transposed conv with flip_weight=True i.e. no flip, then upfirdn2d pad 1 with gain 4) do the
    same arithmetic, so the weights are copied without flipping. (The kernel flip that both
    projects apply is in their TensorFlow -> PyTorch converters, not between the two PyTorch codes.)
    Demodulation differs only in where eps = 1e-8 enters (rosinality after the 1/sqrt(fan_in)
    scale): a relative difference of about 1e-8 in the demodulation factors.
    """
    rsd = dict(rsd)
    used: set[str] = set()
    out: dict[str, torch.Tensor] = {}

    def take(key: str) -> torch.Tensor:
        if key not in rsd:
            raise CheckpointError(f"{name}: not a rosinality StyleGAN2 generator: missing {key!r}")
        used.add(key)
        return rsd[key].detach()

    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in rsd:
        n_mlp += 1
    if n_mlp == 0:
        raise CheckpointError(f"{name}: not a rosinality StyleGAN2 generator: no style.1.weight")
    for i in range(n_mlp):
        out[f"mapping.fc{i}.weight"] = take(f"style.{i + 1}.weight")
        out[f"mapping.fc{i}.bias"] = take(f"style.{i + 1}.bias")
    w_dim = out["mapping.fc0.weight"].shape[1]
    n_up = 0
    while f"to_rgbs.{n_up}.conv.weight" in rsd:
        n_up += 1
    img_resolution = 2 ** (2 + n_up)

    from portraitlib.nets.layers import fir_filter
    f = fir_filter()
    extras: dict[str, Any] = {"noise_generated": []}

    def check_kernel(key: str) -> None:
        if key in rsd:
            used.add(key)
            if rsd[key].shape != f.shape or not torch.allclose(rsd[key].float(), 4 * f, atol=1e-6):
                raise CheckpointError(f"{name}: {key} is not the [1,3,3,1] filter x 4; unsupported blur kernel")

    def styled_conv(src: str, dst: str, noise_idx: int, res: int) -> None:
        out[f"{dst}.weight"] = take(f"{src}.conv.weight").squeeze(0)
        out[f"{dst}.affine.weight"] = take(f"{src}.conv.modulation.weight")
        out[f"{dst}.affine.bias"] = take(f"{src}.conv.modulation.bias")
        out[f"{dst}.noise_strength"] = take(f"{src}.noise.weight").reshape(())
        out[f"{dst}.bias"] = take(f"{src}.activate.bias")
        out[f"{dst}.resample_filter"] = f.clone()
        noise_key = f"noises.noise_{noise_idx}"
        if noise_key in rsd:
            out[f"{dst}.noise_const"] = take(noise_key).reshape(res, res)
        else:  # very old checkpoints kept no noise buffers: a fixed draw stands in
            out[f"{dst}.noise_const"] = torch.randn(res, res, generator=torch.Generator(device="cpu").manual_seed(noise_idx), device="cpu")
            extras["noise_generated"].append(dst)
        check_kernel(f"{src}.conv.blur.kernel")

    def to_rgb(src: str, dst: str) -> None:
        out[f"{dst}.weight"] = take(f"{src}.conv.weight").squeeze(0)
        out[f"{dst}.affine.weight"] = take(f"{src}.conv.modulation.weight")
        out[f"{dst}.affine.bias"] = take(f"{src}.conv.modulation.bias")
        out[f"{dst}.bias"] = take(f"{src}.bias").reshape(-1)
        check_kernel(f"{src}.upsample.kernel")

    const = take("input.input")
    out["synthesis.b4.const"] = const.squeeze(0)
    out["synthesis.b4.resample_filter"] = f.clone()
    styled_conv("conv1", "synthesis.b4.conv1", 0, 4)
    to_rgb("to_rgb1", "synthesis.b4.torgb")
    channels = {4: const.shape[1]}
    for k in range(n_up):
        res = 2 ** (k + 3)
        out[f"synthesis.b{res}.resample_filter"] = f.clone()
        styled_conv(f"convs.{2 * k}", f"synthesis.b{res}.conv0", 2 * k + 1, res)
        styled_conv(f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1", 2 * k + 2, res)
        to_rgb(f"to_rgbs.{k}", f"synthesis.b{res}.torgb")
        channels[res] = out[f"synthesis.b{res}.conv1.weight"].shape[0]
    if latent_avg is not None:
        out["mapping.w_avg"] = latent_avg.detach().reshape(-1)
    else:
        out["mapping.w_avg"] = torch.zeros(w_dim, device="cpu")
        extras["w_avg_missing"] = True
    left = sorted(set(rsd) - used)
    if left:
        raise CheckpointError(f"{name}: {len(left)} rosinality keys not understood: {left[:_LIST_MAX]}")
    base, cmax = _infer_channels(channels, name)
    init_kwargs = dict(z_dim=w_dim, w_dim=w_dim, c_dim=0, img_resolution=img_resolution,
                       img_channels=out["synthesis.b4.torgb.weight"].shape[0], channel_base=base, channel_max=cmax,
                       mapping_layers=n_mlp)
    check_architecture(out, StyleGAN2Generator, init_kwargs, name)
    return out, init_kwargs, extras


def load_stylegan2_rosinality(path: str | Path, *, key: str = "g_ema") -> OfficialCheckpoint:
    """A rosinality stylegan2-pytorch ``.pt`` (``{'g_ema': state_dict, 'latent_avg': ...}``), converted
    to our StyleGAN2Generator names (see :func:`convert_rosinality_state`)."""
    path = Path(path)
    data = _torch_load_weights(path, ROSINALITY_HINT)
    if not isinstance(data, dict):
        raise CheckpointError(f"{path.name}: expected a dict, found {type(data).__name__}")
    rsd = data.get(key, data if "style.1.weight" in data else None)
    if not isinstance(rsd, dict):
        raise CheckpointError(f"{path.name}: no generator state_dict under {key!r} "
                              f"(keys: {sorted(map(str, data))[:10]})")
    latent_avg = data.get("latent_avg")
    sd, init_kwargs, extras = convert_rosinality_state(
        rsd, latent_avg=latent_avg if isinstance(latent_avg, torch.Tensor) else None, name=path.name)
    return OfficialCheckpoint(state_dict=sd, init_kwargs=init_kwargs, which=key, class_name="rosinality.Generator",
                              extras=extras)
