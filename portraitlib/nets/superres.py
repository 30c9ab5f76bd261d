"""EG3D's super-resolution head (SuperresolutionHybrid8XDC's layout: inputs resized to img/4,
block0 upsamples to img/2, block1 to img), sized by the config so small profiles get a small head."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from portraitlib.nets.stylegan2 import SynthesisBlock


class SuperResolution(nn.Module):
    """Raw RGB (N, 3, r, r) and features (N, C, r, r) -> image (N, 3, R, R), R = ``img_resolution``.

    The inputs are resized (bilinear, antialiased) to ``input_resolution`` unless already that
    size. block0 maps C -> ``channels[0]`` at R/2: it upsamples 2x when the input is R/4 (the
    official head: transposed conv + FIR filter, skip image FIR-upsampled) and keeps the size when
    it is R/2. block1 upsamples 2x to ``channels[1]`` at R. Each block takes three w codes (conv0,
    conv1, torgb): the same three for both blocks, as in the official head. Conv and torgb outputs
    are clamped to +-``conv_clamp`` (after bias, activation and gain), as the official fp16 head's.
    """

    def __init__(self, *, in_channels: int, w_dim: int, input_resolution: int, img_resolution: int,
                 channels: tuple[int, int], conv_clamp: float | None = None, antialias: bool = True):
        super().__init__()
        if img_resolution not in (2 * input_resolution, 4 * input_resolution):
            raise ValueError(f"super-resolution input {input_resolution} must be 1/2 or 1/4 of the output "
                             f"{img_resolution}")
        self.input_resolution, self.antialias = input_resolution, antialias
        block = {"w_dim": w_dim, "img_channels": 3, "conv_clamp": conv_clamp}
        self.block0 = SynthesisBlock(in_channels, channels[0], resolution=img_resolution // 2,
                                     up=img_resolution == 4 * input_resolution, **block)
        self.block1 = SynthesisBlock(channels[0], channels[1], resolution=img_resolution, **block)

    def forward(self, rgb: torch.Tensor, x: torch.Tensor, ws: torch.Tensor, *, noise_mode: str = "none") -> torch.Tensor:
        """ws (N, 3, w_dim): the three super-resolution codes."""
        if x.shape[-1] != self.input_resolution:
            size = (self.input_resolution, self.input_resolution)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=self.antialias)
            rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False, antialias=self.antialias)
        x, rgb = self.block0(x, rgb, ws, noise_mode=noise_mode)
        _, rgb = self.block1(x, rgb, ws, noise_mode=noise_mode)
        return rgb
