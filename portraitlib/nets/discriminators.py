"""StyleGAN2 'resnet' discriminators in plain PyTorch, with the official parameter names.

``Discriminator`` is the 2D StyleGAN2 discriminator; ``DualDiscriminator`` is EG3D's: it sees the
super-resolved image and the raw neural rendering (resized to the same size) as one 6-channel
image, and is conditioned on the 25-d camera label by a projection. Names (``b512.fromrgb``,
``b4.conv``, ``mapping.fc7``, ...) follow the official release so that its ``D`` loads as is.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from portraitlib.nets.layers import Conv2dLayer, FullyConnectedLayer, fir_filter
from portraitlib.nets.stylegan2 import MappingNetwork, channels_for


class DiscriminatorBlock(nn.Module):
    """One resolution of a 'resnet' discriminator: (N, C_in, R, R) -> (N, C_out, R/2, R/2).

    The first block (``in_channels == 0``) reads the image with ``fromrgb`` (1x1) instead:
    img (N, img_channels, R, R) -> (N, C_out, R/2, R/2). Residual branch and skip are each
    scaled by sqrt(0.5).
    """

    def __init__(self, *, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int,
                 conv_clamp: float | None = None):
        super().__init__()
        self.in_channels = in_channels
        self.register_buffer("resample_filter", fir_filter())
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, activation="lrelu",
                                       conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, activation="lrelu", down=True,
                                 conv_clamp=conv_clamp)
        self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=True)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None = None) -> torch.Tensor:
        if self.in_channels == 0:
            x = self.fromrgb(img)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return y + x


class MinibatchStdLayer(nn.Module):
    """Appends the mean (over channels and pixels) standard deviation across a group of samples.

    (N, C, H, W) -> (N, C + num_channels, H, W). Sample i is grouped with the samples j = i mod
    N/G, as in the official layer. When N is not a multiple of ``group_size`` the group is the
    largest divisor of N not above it (the official layer would fail there).
    """

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = n if self.group_size is None else min(self.group_size, n)
        while n % g:
            g -= 1
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt()  # (N/G, F, C/F, H, W) stddev over the group
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # (N, F, H, W)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """The 4x4 head: mbstd, 3x3 conv, fc, out. (N, C, 4, 4) [+ cmap (N, cmap_dim)] -> logits (N, 1).

    With ``cmap_dim > 0`` the output is the projection (out(x) * cmap).sum / sqrt(cmap_dim).
    """

    def __init__(self, *, in_channels: int, cmap_dim: int, resolution: int = 4, mbstd_group_size: int | None = 4,
                 mbstd_num_channels: int = 1, conv_clamp: float | None = None):
        super().__init__()
        self.cmap_dim = cmap_dim
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation="lrelu",
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: torch.Tensor, cmap: torch.Tensor | None = None) -> torch.Tensor:
        x = x.to(torch.float32)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """2D StyleGAN2 'resnet' discriminator: img (N, img_channels, R, R), c (N, c_dim) -> logits (N, 1).

    Blocks ``b{R}`` .. ``b8`` halve the resolution; ``b4`` is the epilogue. With ``c_dim > 0`` the
    label is mapped (8 FC layers, no z) to ``cmap`` (N, cmap_dim) for the projection head.
    """

    def __init__(self, *, c_dim: int = 0, img_resolution: int, img_channels: int = 3, channel_base: int = 32768,
                 channel_max: int = 512, mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1,
                 cmap_dim: int | None = None, mapping_layers: int = 8, conv_clamp: float | None = None):
        super().__init__()
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.block_resolutions = [2 ** i for i in range(img_resolution.bit_length() - 1, 2, -1)]
        ch = {res: channels_for(res, channel_base=channel_base, channel_max=channel_max)
              for res in self.block_resolutions + [4]}
        if cmap_dim is None:
            cmap_dim = ch[4]
        if c_dim == 0:
            cmap_dim = 0
        self.cmap_dim = cmap_dim
        for res in self.block_resolutions:
            setattr(self, f"b{res}", DiscriminatorBlock(
                in_channels=ch[res] if res < img_resolution else 0, tmp_channels=ch[res], out_channels=ch[res // 2],
                img_channels=img_channels, conv_clamp=conv_clamp))
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          num_layers=mapping_layers)
        self.b4 = DiscriminatorEpilogue(in_channels=ch[4], cmap_dim=cmap_dim, mbstd_group_size=mbstd_group_size,
                                        mbstd_num_channels=mbstd_num_channels, conv_clamp=conv_clamp)

    def block_features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """The outputs of blocks b{R} .. b8, (N, C_r, r / 2, r / 2) each: D's features of ``img``
        (JoJoGAN's and MMFS's perceptual loss compares them)."""
        x, out = None, []
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, img)
            out.append(x)
        return out

    def _logits(self, img: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(self.block_features(img)[-1], cmap)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, *, blur_sigma: float = 0) -> torch.Tensor:
        if blur_sigma > 0:
            img = gaussian_blur(img, blur_sigma)
        return self._logits(img, c)


class DualDiscriminator(Discriminator):
    """EG3D's discriminator: {'image' (N,3,R,R), 'image_raw' (N,3,r,r)}, c (N,25) -> logits (N,1).

    ``image_raw`` is resized to R (bilinear, antialiased, align_corners False) and concatenated with
    ``image``: the blocks see 6 channels. ``img_channels`` is the channel count of ONE image (3).
    Inputs are never modified in place, so R1 can differentiate with respect to both.
    """

    def __init__(self, *, c_dim: int = 25, img_resolution: int, img_channels: int = 3, disc_c_noise: float = 0,
                 **kwargs):
        super().__init__(c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels * 2, **kwargs)
        self.disc_c_noise = disc_c_noise  # official option (0 in the paper): c + N(0, std_batch(c) * noise)
        self.register_buffer("resample_filter", fir_filter())

    def forward(self, img: dict[str, torch.Tensor], c: torch.Tensor | None, *, blur_sigma: float = 0,
                blur_raw: bool = True, blur_kernel: str = "gaussian") -> torch.Tensor:
        """``blur_sigma`` > 0 blurs ``image`` (and ``image_raw`` unless ``blur_raw`` is False) first;
        ``blur_kernel='eg3d'`` with ``blur_raw=False`` is the official run_D behaviour (see
        :func:`gaussian_blur`)."""
        image, raw = img["image"], img["image_raw"]
        if blur_sigma > 0:
            image = gaussian_blur(image, blur_sigma, kernel=blur_kernel)
            if blur_raw:
                raw = gaussian_blur(raw, blur_sigma, kernel=blur_kernel)
        size = image.shape[-1]
        if raw.shape[-1] != size:  # same-size bilinear resampling is the identity
            raw = F.interpolate(raw, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        if self.disc_c_noise > 0 and c is not None:
            c = c + torch.randn_like(c) * c.std(0) * self.disc_c_noise
        return self._logits(torch.cat([image, raw], dim=1), c)


def blur_kernel_1d(sigma: float, *, kernel: str = "gaussian", device: torch.device | str = "cpu") -> torch.Tensor:
    """The normalised 1D blur taps (2k+1,).

    ``gaussian``: exp(-x^2 / (2 sigma^2)) over x in [-round(3 sigma), round(3 sigma)].
    ``eg3d``: the official training code's 2^(-(x/sigma)^2) over [-floor(3 sigma), floor(3 sigma)]
    (a Gaussian of std sigma / sqrt(2 ln 2) ~ 0.85 sigma).
    """
    if kernel == "gaussian":
        k = round(3 * sigma)
        x = torch.arange(-k, k + 1, dtype=torch.float32, device=device)
        f = torch.exp(-x.square() / (2 * sigma ** 2))
    elif kernel == "eg3d":
        k = math.floor(3 * sigma)
        x = torch.arange(-k, k + 1, dtype=torch.float32, device=device)
        f = torch.exp2(-(x / sigma).square())
    else:
        raise ValueError(f"unknown blur kernel {kernel!r}; valid: gaussian, eg3d")
    return f / f.sum()


def gaussian_blur(x: torch.Tensor, sigma: float, *, kernel: str = "gaussian") -> torch.Tensor:
    """Separable blur of (N, C, H, W) with zero padding (same size out); identity if the kernel has one tap."""
    f = blur_kernel_1d(sigma, kernel=kernel, device=x.device).to(x)
    k = f.shape[0] // 2
    if k == 0:
        return x
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (k, k, 0, 0)), f.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, k, k)), f.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def blur_sigma_at(step_kimg: float, *, fade_kimg: float = 200, start_sigma: float = 10) -> float:
    """EG3D's D-input blur schedule: start_sigma fading linearly to 0 at ``fade_kimg`` thousand images."""
    if fade_kimg <= 0:
        return 0.0
    return max(1 - step_kimg / fade_kimg, 0.0) * start_sigma


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Constructor kwargs of :class:`DualDiscriminator` (names as the official ``D_kwargs``)."""

    c_dim: int = 25
    img_resolution: int = 512
    img_channels: int = 3
    channel_base: int = 32768
    channel_max: int = 512
    mbstd_group_size: int | None = 4
    cmap_dim: int | None = None
    conv_clamp: float | None = None

    def kwargs(self) -> dict:
        return asdict(self)

    def build(self) -> DualDiscriminator:
        return DualDiscriminator(**self.kwargs())


def eg3d_paper_config() -> DiscriminatorConfig:
    """The ffhq512-128 discriminator: 512 px, channel_base 32768, channel_max 512, c_dim 25, mbstd 4.

    The official run passes conv_clamp 256 for its fp16 layers; in fp32 that clamp only touches
    activations beyond +-256, so it is left off here (set it to match bit for bit).
    """
    return DiscriminatorConfig()
