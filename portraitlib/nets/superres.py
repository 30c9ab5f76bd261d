"""EG3D's super-resolution head (SuperresolutionHybrid8XDC's layout: block0 keeps 256 px,
block1 doubles to 512), sized by the config so small profiles get a small head."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from portraitlib.nets.stylegan2 import SynthesisBlock


class SuperResolution(nn.Module):
    """Raw RGB (N, 3, r, r) and features (N, C, r, r) -> image (N, 3, R, R).

    The inputs are resized (antialiased) to ``input_resolution``; block0 maps C -> ``channels[0]``
    at that size, block1 upsamples 2x to ``channels[1]``. Each block takes three w codes
    (conv0, conv1, torgb): the same three for both blocks, as in the official head.
    """

    def __init__(self, *, in_channels: int, w_dim: int, input_resolution: int, channels: tuple[int, int],
                 antialias: bool = True):
        super().__init__()
        self.input_resolution, self.antialias = input_resolution, antialias
        self.block0 = SynthesisBlock(in_channels, channels[0], w_dim=w_dim, resolution=input_resolution,
                                     img_channels=3, up=False)
        self.block1 = SynthesisBlock(channels[0], channels[1], w_dim=w_dim, resolution=2 * input_resolution,
                                     img_channels=3)

    def forward(self, rgb: torch.Tensor, x: torch.Tensor, ws: torch.Tensor, *, noise_mode: str = "none") -> torch.Tensor:
        """ws (N, 3, w_dim): the three super-resolution codes."""
        if x.shape[-1] != self.input_resolution:
            size = (self.input_resolution, self.input_resolution)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=self.antialias)
            rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False, antialias=self.antialias)
        x, rgb = self.block0(x, rgb, ws, noise_mode=noise_mode)
        _, rgb = self.block1(x, rgb, ws, noise_mode=noise_mode)
        return rgb
