"""StyleGAN2 building blocks in plain PyTorch, with the official parameter names and gains.

Equalised learning rate: weights are stored as ``randn / lr_multiplier`` and scaled at run time by
``lr_multiplier / sqrt(fan_in)``; biases by ``lr_multiplier``. Resampling uses the 4x4 FIR filter
[1, 3, 3, 1] (outer product, normalised); no custom CUDA kernels.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2)


def fir_filter(taps=(1.0, 3.0, 3.0, 1.0)) -> torch.Tensor:
    """The normalised separable 2D FIR filter (4, 4)."""
    f = torch.tensor(taps, dtype=torch.float32, device="cpu")
    f = f[:, None] * f[None, :]
    return f / f.sum()


def fir(x: torch.Tensor, f: torch.Tensor, *, pad: tuple[int, int, int, int], gain: float = 1.0) -> torch.Tensor:
    """Pad (left, right, top, bottom) and filter each channel of x (N, C, H, W) with f (k, k)."""
    c = x.shape[1]
    x = F.pad(x, pad)
    kernel = (f * gain).flip([0, 1]).to(x.dtype).expand(c, 1, *f.shape)
    return F.conv2d(x, kernel, groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2x upsampling: zero insertion, then the FIR filter with gain 4. (N, C, H, W) -> (N, C, 2H, 2W)."""
    n, c, h, w = x.shape
    up = torch.zeros(n, c, h, 2, w, 2, dtype=x.dtype, device=x.device)
    up[:, :, :, 0, :, 0] = x
    k = f.shape[0]
    return fir(up.reshape(n, c, 2 * h, 2 * w), f, pad=((k + 1) // 2, (k - 2) // 2, (k + 1) // 2, (k - 2) // 2), gain=4)


def downsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2x downsampling: the FIR filter, then every second pixel. (N, C, H, W) -> (N, C, H/2, W/2)."""
    k = f.shape[0]
    p0, p1 = (k - 1) // 2, (k - 2) // 2
    return fir(x, f, pad=(p0, p1, p0, p1))[:, :, ::2, ::2]


def bias_act(x: torch.Tensor, bias: torch.Tensor | None, *, act: str = "linear", gain: float = 1.0,
             clamp: float | None = None) -> torch.Tensor:
    """Add bias (per channel, dim 1), apply ``linear`` or ``lrelu`` (slope 0.2, gain sqrt 2), clamp."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    if act == "lrelu":
        x = F.leaky_relu(x, 0.2) * SQRT2
    x = x * gain if gain != 1 else x
    return x.clamp(-clamp, clamp) if clamp is not None else x


class FullyConnectedLayer(nn.Module):
    """Equalised-lr linear layer (``weight`` (out, in), ``bias`` (out,))."""

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, demodulate: bool = True,
                     up: bool = False, padding: int = 0, resample_filter: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample modulated convolution.

    x (N, I, H, W), weight (O, I, k, k), styles (N, I). Computed as scale inputs by the styles,
    convolve with the shared weight, scale outputs by the demodulation coefficients
    rsqrt(sum (w * s)^2 + 1e-8): the same result as convolving with per-sample modulated weights,
    and much faster than a grouped convolution on the CPU. With ``up``, a stride-2 transposed
    convolution followed by the FIR filter (gain 4): (N, O, 2H, 2W).
    """
    n = x.shape[0]
    kw = weight.shape[-1]
    x = x * styles.view(n, -1, 1, 1).to(x.dtype)
    if up:
        x = F.conv_transpose2d(x, weight.transpose(0, 1).to(x.dtype), stride=2)  # 2H + k - 2 pixels
        p = (resample_filter.shape[0] - kw + 1) // 2  # the f-tap FIR takes f - 1 away
        x = fir(x, resample_filter, pad=(p, p, p, p), gain=4)
    else:
        x = F.conv2d(x, weight.to(x.dtype), padding=padding)
    if demodulate:
        energy = styles.square() @ weight.square().sum(dim=[2, 3]).t()  # (N, O)
        x = x * (energy + 1e-8).rsqrt().view(n, -1, 1, 1).to(x.dtype)
    return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv + noise + bias + lrelu, optionally 2x upsampling (official names)."""

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, resolution: int, up: bool = False,
                 kernel_size: int = 3, conv_clamp: float | None = None):
        super().__init__()
        self.up, self.resolution, self.conv_clamp = up, resolution, conv_clamp
        self.padding = kernel_size // 2
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("resample_filter", fir_filter())
        self.register_buffer("noise_const", torch.randn(resolution, resolution))

    def forward(self, x: torch.Tensor, w: torch.Tensor, *, noise_mode: str = "const",
                generator: torch.Generator | None = None) -> torch.Tensor:
        styles = self.affine(w)
        x = modulated_conv2d(x, self.weight, styles, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter)
        if noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        elif noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, generator=generator,
                                device=x.device).to(x)
            x = x + noise * self.noise_strength
        elif noise_mode != "none":
            raise ValueError(f"unknown noise_mode {noise_mode!r}; valid: const, random, none")
        return bias_act(x, self.bias, act="lrelu", clamp=self.conv_clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation (official names)."""

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class Conv2dLayer(nn.Module):
    """Equalised-lr conv with optional FIR 2x downsampling (discriminators; official names)."""

    def __init__(self, in_channels: int, out_channels: int, *, kernel_size: int, bias: bool = True,
                 activation: str = "linear", down: bool = False, conv_clamp: float | None = None):
        super().__init__()
        self.activation, self.down, self.conv_clamp = activation, down, conv_clamp
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.register_buffer("resample_filter", fir_filter())

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = self.weight * self.weight_gain
        k = self.weight.shape[-1]
        if self.down and k == 1:  # filter and subsample first, then the 1x1 conv
            x = F.conv2d(downsample2d(x, self.resample_filter), w)
        elif self.down:  # filter with extra padding, then a stride-2 conv
            p = self.padding + 1
            x = F.conv2d(fir(x, self.resample_filter, pad=(p, p, p, p)), w, stride=2)
        else:
            x = F.conv2d(x, w, padding=self.padding)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=gain, clamp=clamp)
