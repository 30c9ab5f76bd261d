"""StyleGAN2 mapping and synthesis networks and the 2D generator (official parameter names)."""
from __future__ import annotations

import torch
from torch import nn

from portraitlib.nets.layers import (FullyConnectedLayer, SynthesisLayer, ToRGBLayer, fir_filter,
                                     normalize_2nd_moment, upsample2d)


class MappingNetwork(nn.Module):
    """z (N, z_dim) and condition c (N, c_dim) -> ws (N, num_ws, w_dim).

    z and embed(c) are each normalised by their second moment, concatenated and mapped by
    ``num_layers`` lrelu FC layers (lr multiplier 0.01). ``w_avg`` tracks the mean w (EMA) for
    truncation. With ``num_ws=None`` it returns (N, w_dim) (a discriminator's camera mapping).
    ``normalize_z=False`` keeps z as it is: a world code's numbers each mean something, and
    dividing a 31-number code by its RMS (+-13% on average) blurs every one of them. ``z_skip``
    adds z itself to the first z_dim numbers of w, so a linear layer reading w sees the (white)
    code directly beside the mapped features.
    """

    def __init__(self, *, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int = 8,
                 lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.998, normalize_z: bool = True,
                 z_skip: bool = False):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, c_dim, w_dim, num_ws, num_layers
        self.w_avg_beta, self.normalize_z, self.z_skip = w_avg_beta, normalize_z, z_skip
        if z_skip and z_dim > w_dim:
            raise ValueError(f"z_skip needs z_dim <= w_dim, got {z_dim} > {w_dim}")
        embed_features = w_dim if c_dim > 0 else 0
        features = [z_dim + embed_features] + [w_dim] * num_layers
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], activation="lrelu",
                                                        lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None, *, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_emas: bool = False) -> torch.Tensor:
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z) if self.normalize_z else z)
        if self.c_dim > 0:
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = torch.cat(parts, dim=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if self.z_skip:
            x = torch.cat([x[:, :self.z_dim] + z.to(x.dtype), x[:, self.z_dim:]], 1)
        if update_emas and hasattr(self, "w_avg"):
            self.w_avg.copy_(x.detach().mean(0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is None:
            return x
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            x[:, :cutoff] = self.w_avg.lerp(x[:, :cutoff], truncation_psi)
        return x


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: (const or 2x-upsampling conv0), conv1, torgb.

    ``up=False`` keeps the resolution (EG3D's super-resolution block0). The skip image ``img`` is
    upsampled with the FIR filter and the block's torgb output added to it.
    """

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, resolution: int, img_channels: int,
                 up: bool = True, conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.up = in_channels, up
        self.register_buffer("resample_filter", fir_filter())
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=up,
                                        conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
                                    conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, *,
                noise_mode: str = "const", generator: torch.Generator | None = None):
        """ws (N, num_conv + num_torgb, w_dim) -> (x, img)."""
        w = iter(ws.unbind(1))
        kw = {"noise_mode": noise_mode, "generator": generator}
        if self.in_channels == 0:
            x = self.conv1(self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1), next(w), **kw)
        else:
            x = self.conv0(x, next(w), **kw)
            x = self.conv1(x, next(w), **kw)
        if img is not None and self.up:
            img = upsample2d(img, self.resample_filter)
        y = self.torgb(x, next(w))
        return x, (y if img is None else img + y)


def channels_for(resolution: int, *, channel_base: int, channel_max: int) -> int:
    """StyleGAN2's channel count at a resolution: min(channel_base // resolution, channel_max)."""
    return min(channel_base // resolution, channel_max)


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> image (N, img_channels, R, R), 'skip' architecture, blocks b4..bR."""

    def __init__(self, *, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, conv_clamp: float | None = None, direct_resolution: int = 0):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2 ** i for i in range(2, img_resolution.bit_length())]
        self.num_ws = 0
        for res in self.block_resolutions:
            in_ch = 0 if res == 4 else channels_for(res // 2, channel_base=channel_base, channel_max=channel_max)
            out_ch = channels_for(res, channel_base=channel_base, channel_max=channel_max)
            block = SynthesisBlock(in_ch, out_ch, w_dim=w_dim, resolution=res, img_channels=img_channels,
                                   conv_clamp=conv_clamp)
            self.num_ws += block.num_conv
            setattr(self, f"b{res}", block)
        self.num_ws += 1  # the last block's torgb
        self.direct_resolution = direct_resolution
        if direct_resolution:  # not in the official network: see ``direct_resolution`` of StyleGAN2Generator
            if direct_resolution not in self.block_resolutions:
                raise ValueError(f"direct_resolution {direct_resolution} is not a block resolution "
                                 f"{self.block_resolutions}")
            channels = channels_for(direct_resolution, channel_base=channel_base, channel_max=channel_max)
            self.direct = FullyConnectedLayer(w_dim, channels * direct_resolution ** 2)
            nn.init.zeros_(self.direct.weight)

    def ws_before(self, resolution: int) -> int:
        """How many of the ws the blocks up to ``resolution`` consume as their own (their convs):
        the blocks above it read the ws from this index on (each block's convs and torgb, the torgb
        sharing its index with the next block's first conv)."""
        if resolution not in self.block_resolutions:
            raise ValueError(f"{resolution} is not a block resolution {self.block_resolutions}")
        return sum(getattr(self, f"b{res}").num_conv for res in self.block_resolutions if res <= resolution)

    def features(self, ws: torch.Tensor, *, until: int, noise_mode: str = "const",
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The blocks b4..b{until}: ws (N, num_ws, w_dim) -> their features x (N, C, until, until)
        (with the direct path when it sits at ``until`` or below) and skip image (N, 3, until, until)."""
        x = img = None
        w_idx = 0
        for res in (r for r in self.block_resolutions if r <= until):
            block = getattr(self, f"b{res}")
            x, img = block(x, img, ws[:, w_idx:w_idx + block.num_conv + block.num_torgb],
                           noise_mode=noise_mode, generator=generator)
            w_idx += block.num_conv
            if res == self.direct_resolution:
                x = x + self.direct(ws.mean(1)).view(x.shape)
        return x, img

    def forward(self, ws: torch.Tensor, *, noise_mode: str = "const", generator: torch.Generator | None = None):
        return self.features(ws, until=self.img_resolution, noise_mode=noise_mode, generator=generator)[1]


class StyleGAN2Generator(nn.Module):
    """The 2D StyleGAN2 generator: z (N, z_dim) -> image (N, 3, R, R) in about [-1, 1].

    ``conv_clamp`` clamps every conv and toRGB output to +-conv_clamp, as the official FFHQ models
    were trained (256); None (our own trainings) clamps nothing. ``direct_resolution`` (0: none, the
    official network) adds a direct linear path from the mean of ws to the features after the block
    of that resolution (x += A w, A zero at initialisation): the mini world's S_world learns each
    identity through it in minutes on a CPU, where a constant input modulated by w learns slowly.
    ``mapping_lr_multiplier`` (StyleGAN2's 0.01), ``normalize_z`` and ``z_skip`` go to the mapping network."""

    def __init__(self, *, z_dim: int = 512, w_dim: int = 512, img_resolution: int = 1024, img_channels: int = 3,
                 channel_base: int = 32768, channel_max: int = 512, mapping_layers: int = 8, c_dim: int = 0,
                 conv_clamp: float | None = None, direct_resolution: int = 0, mapping_lr_multiplier: float = 0.01,
                 normalize_z: bool = True, z_skip: bool = False):
        super().__init__()
        self.z_dim, self.w_dim, self.c_dim, self.img_resolution = z_dim, w_dim, c_dim, img_resolution
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          channel_base=channel_base, channel_max=channel_max, conv_clamp=conv_clamp,
                                          direct_resolution=direct_resolution)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      num_layers=mapping_layers, lr_multiplier=mapping_lr_multiplier,
                                      normalize_z=normalize_z, z_skip=z_skip)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, *, truncation_psi: float = 1.0,
                noise_mode: str = "const", update_emas: bool = False) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode)
