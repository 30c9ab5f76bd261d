"""MMFS's network (Sec. 3.1-3.2): an encoder E that predicts S's feature map at a middle resolution,
decoded by S's own higher blocks D with style codes from S's mapping network:

    I_rec = D(E(I), w),   w = mapping(z)[first:]   (the codes of D's layers)

At the start D and the mapping are copies of S's, so D(E(S(z)), mapping(z)) = S(z) once E
predicts S's features (Stage I, Eq. 1); Stage II fine-tunes all three on the styles.

    net = MMFS.from_source(S, feature_resolution=16, encoder_width=32)
    images = net(photos * 2 - 1, net.styles(z))          # (N, 3, R, R) in about [-1, 1]
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from portraitlib.nets.stylegan2 import StyleGAN2Generator


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions (LeakyReLU 0.2) beside a 1x1 shortcut; ``down`` halves the side (both
    strided: an average-pooled shortcut learnt slower and spiked in a Stage I probe)."""

    def __init__(self, in_channels: int, out_channels: int, *, down: bool):
        super().__init__()
        stride = 2 if down else 1
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = nn.Conv2d(in_channels, out_channels, 1, stride=stride)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class FeatureEncoder(nn.Module):
    """E: images (N, 3, R, R) in [-1, 1] -> S's features (N, C, r, r) and skip image (N, 3, r, r)
    at r = ``resolution`` (S's 'skip' generator carries both from one block to the next)."""

    def __init__(self, *, img_resolution: int, resolution: int, channels: int, width: int):
        super().__init__()
        if resolution >= img_resolution:
            raise ValueError(f"E's output side {resolution} must be below the image's {img_resolution}")
        layers, ch = [nn.Conv2d(3, width, 3, padding=1), nn.LeakyReLU(0.2)], width
        side = img_resolution
        while side > resolution:
            out = min(2 * ch, 4 * width)
            layers.append(ResidualBlock(ch, out, down=True))
            ch, side = out, side // 2
        layers += [ResidualBlock(ch, ch, down=False), ResidualBlock(ch, ch, down=False)]
        self.body = nn.Sequential(*layers)
        self.to_features = nn.Conv2d(ch, channels, 1)
        self.to_image = nn.Conv2d(ch, 3, 1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # contiguous: a strided 1x1 conv's backward on channels-last activations (the world's loaded
        # photos are channels-last) aborts torch 2.14's CPU kernels
        h = self.body(images.contiguous())
        return self.to_features(h), self.to_image(h)


class Decoder(nn.Module):
    """D: S's synthesis blocks above the side r of its input, with their own codes:
    x (N, C, r, r), img (N, 3, r, r), ws (N, num_ws, w_dim) -> image (N, 3, R, R)."""

    def __init__(self, blocks: list[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.num_ws = sum(b.num_conv for b in blocks) + 1

    def forward(self, x: torch.Tensor, img: torch.Tensor, ws: torch.Tensor, *, noise_mode: str = "const",
                generator: torch.Generator | None = None) -> torch.Tensor:
        w_idx = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, w_idx:w_idx + block.num_conv + block.num_torgb],
                           noise_mode=noise_mode, generator=generator)
            w_idx += block.num_conv
        return img


class MMFS(nn.Module):
    """E, D and the mapping network z -> w of the style codes; see the module docstring."""

    def __init__(self, *, encoder: FeatureEncoder, decoder: Decoder, mapping: nn.Module, first_w: int,
                 feature_resolution: int):
        super().__init__()
        self.encoder, self.decoder, self.mapping = encoder, decoder, mapping
        self.first_w = first_w
        """Index of D's first code among S's ws (``SynthesisNetwork.ws_before`` of r)."""
        self.feature_resolution = feature_resolution
        """r: the side of the features E predicts and D starts from."""
        self.z_dim, self.w_dim = mapping.z_dim, mapping.w_dim

    @classmethod
    def from_source(cls, source: StyleGAN2Generator, *, feature_resolution: int, encoder_width: int) -> "MMFS":
        """E freshly initialised (from torch's RNG: build inside ``device.seeded_build``), D and the
        mapping copied from S, cut at ``feature_resolution``."""
        synthesis = source.synthesis
        if synthesis.direct_resolution > feature_resolution:
            raise ValueError(f"S's direct path at {synthesis.direct_resolution} px reads the mean of all its ws: "
                             f"cut it at {synthesis.direct_resolution} or above, not {feature_resolution}")
        first_w = synthesis.ws_before(feature_resolution)
        cut = getattr(synthesis, f"b{feature_resolution}")
        encoder = FeatureEncoder(img_resolution=synthesis.img_resolution, resolution=feature_resolution,
                                 channels=cut.conv1.weight.shape[0], width=encoder_width)
        blocks = [copy.deepcopy(getattr(synthesis, f"b{r}")) for r in synthesis.block_resolutions if r > feature_resolution]
        net = cls(encoder=encoder, decoder=Decoder(blocks), mapping=copy.deepcopy(source.mapping), first_w=first_w,
                  feature_resolution=feature_resolution)
        return net.to(next(source.parameters()).device)

    @property
    def num_ws(self) -> int:
        """How many codes D reads (n_l of the CLIP mapping)."""
        return self.decoder.num_ws

    def styles(self, z: torch.Tensor) -> torch.Tensor:
        """D's codes (N, num_ws, w_dim) of style noises z (N, z_dim)."""
        return self.mapping(z, None)[:, self.first_w:]

    def forward(self, images: torch.Tensor, ws: torch.Tensor, *, noise_mode: str = "const",
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Images (N, 3, R, R) in [-1, 1] and D's codes (N, num_ws, w_dim) -> (N, 3, R, R)."""
        x, img = self.encoder(images)
        return self.decoder(x, img, ws, noise_mode=noise_mode, generator=generator)
