"""I2T, the image-to-triplane network H of free-style 3D portraits (Sec. 3.2), in place of the 3D
GAN's triplane generator; its decoder, renderer and super-resolution stay frozen.

A style encoder E turns the front view I_f into a code w_s, spatial (c x k x k, the paper's k = 32 at
512 px) or, in Table 2's ablation, a vector (c). StyleGAN-like modulation layers (SMLs) grow the
planes from a learned constant, each normalised per position and modulated by w_s (Eq. 3):

    F_{c,h,w} <- gamma_{h,w}(w_s) * (F_{c,h,w} - mu_{h,w}) / sigma_{h,w} + beta_{h,w}(w_s)

with mu, sigma the mean and deviation over channels at each position (our reading of the printed
indices) and gamma, beta 3 x 3 convolutions of w_s resized to the layer (a vector w_s: linear
layers, the same at every position). H is pretrained on the 3D GAN's own samples, front view ->
planes (Eq. 4, L1), then fine-tuned on the few-shot set D_s (Eq. 5-7):

    L_rec = || G*(I_f, v) - I_v ||_1 + lpips(G*(I_f, v), I_v)                   (5)
    L_dr  = E || sigma(x) - sigma(x + delta * x) ||_1                          (6)
    L     = lambda_rec L_rec + lambda_dr L_dr                                    (7)

Eq. 6 is used as printed, a multiplicative nudge (``I2TConfig.dr_multiplicative``); EG3D's code
nudges additively (x + delta), the other setting. The super-resolution's codes are G's mean w
(the paper does not say which codes drive it once the planes come from H).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from portraitlib.freestyle3d.config import I2TConfig
from portraitlib.losses import density_regularization
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.pretrain.loop import fit
from portraitlib.training.warm3d import frontal_labels


class SpatialModulation(nn.Module):
    """Eq. (3): per-position normalisation over channels, then gamma * x + beta from w_s."""

    def __init__(self, *, channels: int, code_channels: int, spatial: bool):
        super().__init__()
        self.spatial = spatial
        make = (lambda: nn.Conv2d(code_channels, channels, 3, padding=1)) if spatial else (
            lambda: nn.Linear(code_channels, channels))
        self.gamma, self.beta = make(), make()

    def forward(self, features: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """features (N, C, H, W); code (N, c, k, k) spatial or (N, c) -> (N, C, H, W)."""
        normed = (features - features.mean(1, keepdim=True)) / (features.std(1, keepdim=True) + 1e-5)
        if self.spatial:
            code = F.interpolate(code, size=features.shape[-2:], mode="bilinear", align_corners=False)
            return (1 + self.gamma(code)) * normed + self.beta(code)
        return (1 + self.gamma(code))[..., None, None] * normed + self.beta(code)[..., None, None]


class StyleEncoder(nn.Module):
    """E: images (N, 3, R, R) in [0, 1] -> w_s (N, c, k, k), or (N, c) averaged over positions."""

    def __init__(self, *, resolution: int, config: I2TConfig, spatial: bool):
        super().__init__()
        halvings = int(math.log2(resolution // config.code_size))
        if config.code_size * 2 ** halvings != resolution:
            raise ValueError(f"{resolution} px does not halve to the code size {config.code_size}")
        layers, width = [nn.Conv2d(3, config.width, 3, padding=1), nn.LeakyReLU(0.2)], config.width
        for _ in range(halvings):
            layers += [nn.Conv2d(width, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, nn.Conv2d(width, config.code_channels, 3, padding=1))
        self.spatial = spatial

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        code = self.net(images * 2 - 1)
        return code if self.spatial else code.mean((2, 3))


class I2T(nn.Module):
    """H: front views (N, 3, R, R) in [0, 1] -> planes (N, 3, C, r, r) of a 3D GAN's layout."""

    def __init__(self, *, config: I2TConfig, resolution: int, plane_channels: int, plane_resolution: int,
                 spatial: bool = True):
        super().__init__()
        self.encoder = StyleEncoder(resolution=resolution, config=config, spatial=spatial)
        start = max(plane_resolution // 4, 4)
        self.upsample_at = set(range(1, 2 * int(math.log2(plane_resolution // start)), 2))  # every second layer
        self.const = nn.Parameter(torch.randn(1, config.width, start, start))
        self.convs = nn.ModuleList(nn.Conv2d(config.width, config.width, 3, padding=1) for _ in range(config.layers))
        self.mods = nn.ModuleList(SpatialModulation(channels=config.width, code_channels=config.code_channels,
                                                    spatial=spatial) for _ in range(config.layers))
        self.to_planes = nn.Conv2d(config.width, 3 * plane_channels, 1)
        self.plane_shape = (3, plane_channels, plane_resolution, plane_resolution)
        if len(self.upsample_at) > config.layers:
            raise ValueError(f"{config.layers} layers cannot grow {start} px to {plane_resolution} px")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        code = self.encoder(images)
        x = self.const.expand(len(images), -1, -1, -1)
        for i, (conv, mod) in enumerate(zip(self.convs, self.mods)):
            if i in self.upsample_at:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = F.leaky_relu(mod(conv(x), code), 0.2)
        return self.to_planes(x).view(len(images), *self.plane_shape)


def build_i2t(config: I2TConfig, generator: TriPlaneGenerator, *, spatial: bool = True) -> I2T:
    """An I2T for ``generator``'s image size and plane layout (build it inside ``seeded_build``)."""
    g = generator.config
    return I2T(config=config, resolution=g.img_resolution, plane_channels=g.plane_channels,
               plane_resolution=g.plane_resolution, spatial=spatial)


@torch.no_grad()
def pretraining_pool(generator: TriPlaneGenerator, *, n: int, seed: int, batch: int = 32) -> dict[str, torch.Tensor]:
    """Eq. (4)'s pairs: for n samples z ~ N(0, I) of G (seeded), the front view I_f (n, 3, R, R) and
    the planes p (n, 3, C, r, r), on the CPU."""
    device = next(generator.parameters()).device
    z = torch.randn(n, generator.config.z_dim, generator=torch.Generator(device="cpu").manual_seed(seed))
    images, planes = [], []
    for i in range(0, n, batch):
        labels = frontal_labels(len(z[i:i + batch]), device)
        ws = generator.mapping(z[i:i + batch].to(device), labels)
        p = generator.planes(ws)
        out = generator.synthesis(ws, labels, deterministic=True, planes=p)  # the same planes, made once
        images.append(((out["image"] + 1) / 2).clamp(0, 1).cpu())
        planes.append(p.cpu())
    return {"images": torch.cat(images), "planes": torch.cat(planes)}


def pretrain(net: I2T, pool: dict, *, config: I2TConfig, seed: int, checkpoint, minutes: float | None = None,
             progress: str | None = None) -> dict:
    """Eq. (4): L1 between H(I_f) and G's planes p over the pool; resumable (``pretrain.loop.fit``)."""
    device = next(net.parameters()).device

    def loss(step: int, idx: torch.Tensor, rng: torch.Generator):
        value = F.l1_loss(net(pool["images"][idx].to(device)), pool["planes"][idx].to(device))
        return value, {"l1_planes": value.item()}

    _, log = fit(net, loss=loss, measure=lambda _: {}, steps=config.pretrain_steps, pool_size=len(pool["images"]),
                 batch=config.batch, lr=config.lr, seed=seed, checkpoint=checkpoint,
                 eval_every=max(1, config.pretrain_steps // 20), minutes=minutes, progress=progress)
    return log


def render(generator: TriPlaneGenerator, planes: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """G*(I_f, v): H's planes (N, 3, C, r, r) through G's frozen decoder, renderer and super-resolution
    (codes: G's mean w) at cameras (N, 25); ``image`` in [0, 1], ``image_depth``."""
    w_avg = generator.backbone.mapping.w_avg
    ws = w_avg.view(1, 1, -1).expand(len(planes), generator.num_ws, -1)
    out = generator.synthesis(ws, labels, planes=planes, deterministic=True)
    return {"image": ((out["image"] + 1) / 2).clamp(0, 1), "image_depth": out["image_depth"]}


def finetune(net: nn.Module, generator: TriPlaneGenerator, inputs: torch.Tensor, views: torch.Tensor,
             labels: torch.Tensor, *, config: I2TConfig, perceptual, seed: int, checkpoint,
             minutes: float | None = None, progress: str | None = None) -> dict:
    """Eq. (5)-(7) on D_s: ``inputs`` (K, ...) what ``net`` maps to planes for each identity (I2T: the
    edited front view I_f), ``views`` (K, V, 3, R, R) its edited views at cameras ``labels`` (V, 25);
    each step, ``batch`` views of one identity. G stays frozen. Resumable."""
    device = next(net.parameters()).device
    k, v = views.shape[:2]

    def loss(step: int, idx: torch.Tensor, rng: torch.Generator):
        who = idx[0] // v  # the pool is every (identity, view); the batch's first index picks the identity
        pick = idx % v
        planes = net(inputs[who:who + 1].to(device))
        out = render(generator, planes.expand(len(pick), -1, -1, -1, -1), labels[pick].to(device))
        target = views[who, pick].to(device)
        l1, lp = F.l1_loss(out["image"], target), perceptual(out["image"], target).mean()
        dr = density_regularization(lambda p: generator.field(planes)(p)[1], batch=1, generator=rng, device=device,
                                    box_warp=generator.config.box_warp, multiplicative=config.dr_multiplicative)
        return (config.rec_weight * (l1 + lp) + config.dr_weight * dr,
                {"l1": l1.item(), "lpips": lp.item(), "density": dr.item()})

    _, log = fit(net, loss=loss, measure=lambda _: {}, steps=config.finetune_steps, pool_size=k * v,
                 batch=config.batch, lr=config.finetune_lr, seed=seed, checkpoint=checkpoint,
                 eval_every=max(1, config.finetune_steps // 10), minutes=minutes, progress=progress)
    return log
