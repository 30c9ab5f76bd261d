"""Image encoders into a StyleGAN2 generator's latent spaces.

* :class:`HierarchicalVAEEncoder` (AgileGAN): image -> per-layer mean and log-variance in the
  multi-resolution z+ space (num_ws x z_dim), each layer's z then passing through the generator's
  own mapping network. The KL term keeps inverted codes Gaussian, like the prior S was trained on.
* :class:`WPlusEncoder` (pSp-like): image -> w+ (num_ws x w_dim) as an offset from the mean w.

Both read a feature pyramid (coarse, medium, fine) of one conv trunk; coarse layers of the
generator take the deepest features, fine layers the shallowest, as pSp's map2style heads do.
"""
from __future__ import annotations

import torch
from torch import nn

from portraitlib.device import device_of, seeded_generator


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.GroupNorm(8, cout), nn.SiLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(8, cout), nn.SiLU())


class FeaturePyramid(nn.Module):
    """Images (N, 3, R, R) in [0, 1] -> three pooled feature vectors (fine, medium, coarse), (N, C) each.

    Stride-2 blocks down to 4x4; the last three block outputs are flattened after pooling to 2x2.
    """

    def __init__(self, *, img_resolution: int, width: int = 32):
        super().__init__()
        depth = img_resolution.bit_length() - 3  # R -> 4 px
        if depth < 3:
            raise ValueError(f"img_resolution {img_resolution} is too small (needs at least 32)")
        chans = [3] + [min(width * 2 ** i, 8 * width) for i in range(depth)]
        self.blocks = nn.ModuleList(_block(a, b) for a, b in zip(chans[:-1], chans[1:]))
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.out_features = [4 * c for c in chans[-3:]]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x, feats = images * 2 - 1, []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return [self.pool(f).flatten(1) for f in feats[-3:]]


def layer_groups(num_ws: int) -> list[range]:
    """Generator layer indices split into (coarse, medium, fine) ranges of about a third each."""
    a, b = (num_ws + 2) // 3, (2 * num_ws + 2) // 3
    return [range(0, a), range(a, b), range(b, num_ws)]


class _PerLayerHeads(nn.Module):
    """For each generator layer, a small MLP on the pyramid level that feeds it -> out_dim."""

    def __init__(self, *, in_features: list[int], num_ws: int, out_dim: int, hidden: int):
        super().__init__()
        coarse, medium, fine = layer_groups(num_ws)
        # coarse layers read the deepest features (last pyramid level), fine the shallowest
        self.level = [2] * len(coarse) + [1] * len(medium) + [0] * len(fine)
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(in_features[lvl], hidden), nn.SiLU(), nn.Linear(hidden, out_dim))
            for lvl in self.level)
        for head in self.heads:  # start near the prior: small outputs
            nn.init.zeros_(head[-1].bias)
            head[-1].weight.data.mul_(0.1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([head(feats[lvl]) for head, lvl in zip(self.heads, self.level)], dim=1)


class HierarchicalVAEEncoder(nn.Module):
    """AgileGAN's encoder: images (N, 3, R, R) in [0, 1] -> (mu, logvar), each (N, num_ws, z_dim)."""

    def __init__(self, *, img_resolution: int, num_ws: int, z_dim: int, width: int = 32, hidden: int = 256):
        super().__init__()
        self.num_ws, self.z_dim = num_ws, z_dim
        self.trunk = FeaturePyramid(img_resolution=img_resolution, width=width)
        self.heads = _PerLayerHeads(in_features=self.trunk.out_features, num_ws=num_ws, out_dim=2 * z_dim,
                                    hidden=hidden)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.heads(self.trunk(images)).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 4.0)

    @staticmethod
    def sample(mu: torch.Tensor, logvar: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """The reparameterised z+ = mu + sigma * eps."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device).to(mu)
        return mu + (0.5 * logvar).exp() * eps

    @staticmethod
    def kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """(N,) KL divergence to the standard normal, summed over layers and dimensions."""
        return 0.5 * (mu.square() + logvar.exp() - 1 - logvar).flatten(1).sum(1)


class WPlusEncoder(nn.Module):
    """A plain W+ encoder: images (N, 3, R, R) in [0, 1] -> w+ (N, num_ws, w_dim) = w_avg + offset."""

    def __init__(self, *, img_resolution: int, num_ws: int, w_dim: int, w_avg: torch.Tensor, width: int = 32,
                 hidden: int = 256):
        super().__init__()
        self.num_ws, self.w_dim = num_ws, w_dim
        self.trunk = FeaturePyramid(img_resolution=img_resolution, width=width)
        self.heads = _PerLayerHeads(in_features=self.trunk.out_features, num_ws=num_ws, out_dim=w_dim, hidden=hidden)
        self.register_buffer("w_avg", w_avg.detach().clone().reshape(w_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.w_avg + self.heads(self.trunk(images))


def ws_from_zplus(mapping: nn.Module, zplus: torch.Tensor) -> torch.Tensor:
    """Map each layer's z of z+ (N, num_ws, z_dim) through ``mapping`` -> w+ (N, num_ws, w_dim)."""
    n, num_ws, z_dim = zplus.shape
    ws = mapping(zplus.reshape(n * num_ws, z_dim), None)[:, 0]
    return ws.reshape(n, num_ws, -1)


def sample_zplus(n: int, *, num_ws: int, z_dim: int, shared: bool, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
    """z+ (n, num_ws, z_dim) from the prior: one z for every layer (``shared``, StyleGAN2's own
    sampling) or an independent z per layer (the multi-resolution prior the hierarchical VAE uses).
    Drawn on ``generator``'s device (the CPU without one)."""
    device = generator.device if generator is not None else "cpu"
    if shared:
        return torch.randn(n, 1, z_dim, generator=generator, device=device).expand(n, num_ws, z_dim).contiguous()
    return torch.randn(n, num_ws, z_dim, generator=generator, device=device)


@torch.no_grad()
def mean_w(generator: nn.Module, *, n: int = 4096, seed: int = 0) -> torch.Tensor:
    """The mean w (w_dim,) of a generator's mapping network over n prior draws of z (the same
    whether layers share z or not: each layer's w has this mean)."""
    device = device_of(generator)
    z = torch.randn(n, generator.z_dim, generator=seeded_generator(seed, device), device=device)
    return generator.mapping(z, None)[:, 0].mean(0)
