"""EG3D's tri-plane generator, written from the published facts, with the official names.

    G = TriPlaneGenerator(config=configs.PAPER)
    out = G(z, c)                      # out["image"], out["image_raw"], out["image_depth"]
    out = G.synthesis(ws, c)           # ws: (N, 14, 512) official, or (N, 17, 512) AgileGAN3D W+

AgileGAN3D's W+ has 17 codes: 14 for the tri-plane backbone and 3 for super-resolution. The
official 14-code path feeds the last code three times to super-resolution, as the release does.
"""
from __future__ import annotations

import torch
from torch import nn

from portraitlib import cameras
from portraitlib.nets import volume
from portraitlib.nets.configs import TriPlaneConfig
from portraitlib.nets.layers import FullyConnectedLayer
from portraitlib.nets.stylegan2 import MappingNetwork, SynthesisNetwork
from portraitlib.nets.superres import SuperResolution


class OSGDecoder(nn.Module):
    """Plane features (N, P, C) -> (colors (N, P, C_out) in [-0.001, 1.001], raw density (N, P, 1))."""

    def __init__(self, *, in_features: int, hidden: int, out_features: int):
        super().__init__()
        self.net = nn.Sequential(FullyConnectedLayer(in_features, hidden), nn.Softplus(),
                                 FullyConnectedLayer(hidden, 1 + out_features))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, p, c = features.shape
        x = self.net(features.reshape(n * p, c)).reshape(n, p, -1)
        return torch.sigmoid(x[..., 1:]) * (1 + 2 * 0.001) - 0.001, x[..., :1]


class Backbone(nn.Module):
    """The StyleGAN2 backbone: mapping (z, c) -> ws and synthesis ws -> 3 feature planes."""

    def __init__(self, config: TriPlaneConfig):
        super().__init__()
        self.synthesis = SynthesisNetwork(w_dim=config.w_dim, img_resolution=config.plane_resolution,
                                          img_channels=3 * config.plane_channels,
                                          channel_base=config.channel_base, channel_max=config.channel_max)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=config.z_dim, c_dim=config.c_dim, w_dim=config.w_dim,
                                      num_ws=self.num_ws, num_layers=config.mapping_layers,
                                      lr_multiplier=config.mapping_lr_multiplier, normalize_z=config.normalize_z,
                                      z_skip=config.z_skip)
        if config.plane_head:
            self.plane_head = FullyConnectedLayer(config.w_dim, 3 * config.plane_channels * config.plane_resolution ** 2)
            nn.init.zeros_(self.plane_head.weight)


class TriPlaneGenerator(nn.Module):
    """z (N, z_dim) and camera labels c (N, 25) -> image, raw image and depth."""

    def __init__(self, *, config: TriPlaneConfig):
        super().__init__()
        self.config = config
        self.backbone = Backbone(config)
        self.num_ws = self.backbone.num_ws  # 14 for the official config
        self.num_ws_plus = self.num_ws + config.num_sr_ws  # AgileGAN3D's W+ (17)
        self.decoder = OSGDecoder(in_features=config.plane_channels, hidden=config.decoder_hidden,
                                  out_features=config.plane_channels)
        self.superresolution = SuperResolution(in_channels=config.plane_channels, w_dim=config.w_dim,
                                               input_resolution=config.sr_input_resolution,
                                               img_resolution=config.img_resolution,
                                               channels=config.sr_channels, conv_clamp=config.sr_conv_clamp)
        self.layout = {"official": volume.PLANES_OFFICIAL, "corrected": volume.PLANES_CORRECTED}[config.plane_layout]

    def mapping(self, z: torch.Tensor, c: torch.Tensor, *, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, update_emas: bool = False) -> torch.Tensor:
        """ws (N, 14, w_dim) from z and the conditioning camera (generator pose conditioning)."""
        return self.backbone.mapping(z, c * self.config.c_scale, truncation_psi=truncation_psi,
                                     truncation_cutoff=truncation_cutoff, update_emas=update_emas)

    def planes(self, ws: torch.Tensor, *, noise_mode: str = "const") -> torch.Tensor:
        """Feature planes (N, 3, C, H, W) from the backbone codes ws[:, :num_ws]."""
        img = self.backbone.synthesis(ws[:, :self.num_ws], noise_mode=noise_mode)
        if self.config.plane_head:  # the mini world's direct path, from the backbone codes' mean
            img = img + self.backbone.plane_head(ws[:, :self.num_ws].mean(1)).view(img.shape)
        c, r = self.config.plane_channels, self.config.plane_resolution
        return img.view(len(img), 3, c, r, r)

    def field(self, planes: torch.Tensor):
        """The radiance field of these planes: points (N, P, 3) -> (features, raw density)."""
        def evaluate(points):
            features = volume.sample_triplanes(planes, points, layout=self.layout, box_warp=self.config.box_warp)
            return self.decoder(features)
        return evaluate

    def sr_codes(self, ws: torch.Tensor) -> torch.Tensor:
        """The three super-resolution codes: ws[:, 14:17] for W+, else the last code repeated."""
        if ws.shape[1] == self.num_ws_plus:
            return ws[:, self.num_ws:]
        if ws.shape[1] == self.num_ws:
            return ws[:, -1:].repeat(1, 3, 1)
        raise ValueError(f"ws must hold {self.num_ws} (official) or {self.num_ws_plus} (W+) codes, "
                         f"got {ws.shape[1]}")

    def synthesis(self, ws: torch.Tensor, c: torch.Tensor, *, neural_rendering_resolution: int | None = None,
                  noise_mode: str = "const", generator: torch.Generator | None = None,
                  deterministic: bool = False, return_weights: bool = False,
                  planes: torch.Tensor | None = None,
                  ray_bounds: tuple[float, float] | None = None) -> dict[str, torch.Tensor]:
        """Render codes ws (N, 14 or 17, w_dim) from cameras c (N, 25) (rays from each label's
        cam2world and intrinsics). ``planes`` (N, 3, C, H, W), when given, replace the backbone's
        planes of ws (an image-to-triplane network's, free-style 3D); ws then only drive the
        super-resolution. ``ray_bounds`` (near, far) replace the config's ray_start and ray_end for
        this call (cameras at another distance from the head, 3DAvatarGAN's camera alignment).

        Returns ``image`` (N, 3, R, R), ``image_raw`` (N, 3, r, r), ``image_depth`` (N, 1, r, r), and
        with ``return_weights`` the features (N, C, r, r) and ray weights.
        """
        if ws.shape[1] == 1:
            ws = ws.repeat(1, self.num_ws, 1)
        sr_ws = self.sr_codes(ws)
        r = neural_rendering_resolution or self.config.neural_rendering_resolution
        cam2world, intrinsics = cameras.split_labels(c)
        origins, dirs = cameras.rays(cam2world.float(), r, intrinsics=intrinsics.float())
        planes = self.planes(ws, noise_mode=noise_mode) if planes is None else planes
        near, far = ray_bounds or (self.config.ray_start, self.config.ray_end)
        out = volume.render_rays(self.field(planes), origins.to(ws), dirs.to(ws), near=near,
                                 far=far, coarse=self.config.coarse_samples,
                                 fine=self.config.fine_samples, generator=generator, deterministic=deterministic)
        n = len(ws)
        features = out["features"].permute(0, 2, 1).reshape(n, -1, r, r)
        depth = out["depth"].permute(0, 2, 1).reshape(n, 1, r, r)
        raw = features[:, :3]
        image = self.superresolution(raw, features, sr_ws)
        result = {"image": image, "image_raw": raw, "image_depth": depth}
        if return_weights:
            result |= {"features": features, "weights": out["weights"]}
        return result

    def forward(self, z: torch.Tensor, c: torch.Tensor, *, c_cond: torch.Tensor | None = None,
                truncation_psi: float = 1.0, **kwargs) -> dict[str, torch.Tensor]:
        """Sample z at camera c; ``c_cond`` (default c) is the camera the mapping is conditioned on
        (EG3D's generator pose conditioning; training swaps it for another sample's at times)."""
        ws = self.mapping(z, c if c_cond is None else c_cond, truncation_psi=truncation_psi)
        return self.synthesis(ws, c, **kwargs)


def swap_conditioning(c: torch.Tensor, *, probability: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """EG3D's generator pose conditioning regulariser: each row of c (N, 25) is replaced, with
    ``probability``, by another row (a shuffled copy), so the mapping does not learn to tie
    the identity to the rendering camera."""
    swap = torch.rand(len(c), generator=generator, device=c.device) < probability
    shuffled = c[torch.randperm(len(c), generator=generator, device=c.device)]
    return torch.where(swap.unsqueeze(1), shuffled, c)
