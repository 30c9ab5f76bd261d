"""The I2T stages of the free-style 3D study (Alg. 2): H pretrained on the 3D GAN's samples, then
fine-tuned on each style's few-shot set, in Table 2's variants; each through the artefact cache.

    H, log = pretrained_i2t(ctx, G, g_key=..., spatial=True)
    H_s, log = stylized(ctx, G, sets, style="cartoon", variant=Variant.OURS, keys=..., perceptual=...)
    renders = portraits(H_s, G, net_inputs(held_out_sets, G, Variant.OURS), labels)["image"]

``Variant.NO_I2T`` is Table 2's "w/o I2T": G's own planes of the identity's w through two trainable
modulation layers (:class:`PlaneAdapter`, a residual that starts at G's planes), G frozen.
"""
from __future__ import annotations

import enum

import torch
from torch import nn

from portraitlib.device import seeded_build
from portraitlib.freestyle3d import i2t
from portraitlib.freestyle3d.config import I2TConfig
from portraitlib.freestyle3d.study import FewShotSets, view_labels
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.provenance import module_version
from portraitlib.settings import settings_key


class Variant(str, enum.Enum):
    """Table 2's rows; the value is the row's name."""

    OURS = "ours"
    NO_I2T = "w/o I2T"
    NO_PRETRAINING = "w/o I2T pre-training"
    NO_SPATIAL = "w/o w_s spatial dimension"


class PlaneAdapter(nn.Module):
    """planes (N, 3, C, r, r) -> planes + two modulation layers of them (a learned vector code),
    the second's output scaled by a gain that starts at 0: G's own planes at the start."""

    def __init__(self, *, plane_channels: int, code_channels: int = 16):
        super().__init__()
        width = 3 * plane_channels
        self.code = nn.Parameter(torch.zeros(1, code_channels))
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(2))
        self.mods = nn.ModuleList(i2t.SpatialModulation(channels=width, code_channels=code_channels, spatial=False)
                                  for _ in range(2))
        self.gain = nn.Parameter(torch.zeros(()))

    def forward(self, planes: torch.Tensor) -> torch.Tensor:
        x = planes.flatten(1, 2)
        code = self.code.expand(len(x), -1)
        for conv, mod in zip(self.convs, self.mods):
            x = torch.nn.functional.leaky_relu(mod(conv(x), code), 0.2)
        return planes + self.gain * x.view(planes.shape)


def pretrained_i2t(ctx, generator: TriPlaneGenerator, *, g_key: dict, spatial: bool = True,
                   progress: bool = True) -> tuple[i2t.I2T, dict]:
    """H pretrained by Eq. (4) on ``i2t.pretrain_pool`` samples of G (keyed by ``g_key``, G's artefact
    config), eval and frozen, and its training log."""
    cfg: I2TConfig = ctx.profile.freestyle.i2t
    key = {"i2t": settings_key(cfg), "spatial": spatial, "G": g_key, "code": module_version(i2t.__name__)}
    stage = "freestyle-i2t-pretrain"

    def build() -> dict:
        pool = i2t.pretraining_pool(generator, n=cfg.pretrain_pool, seed=ctx.seed * 1000 + 707)
        with seeded_build(ctx.seed, f"{stage}-{spatial}"):
            net = i2t.build_i2t(cfg, generator, spatial=spatial).to(ctx.device)
        log = i2t.pretrain(net, pool, config=cfg, seed=ctx.seed, checkpoint=ctx.cache.resume_path(stage, key),
                           progress="I2T pretraining (Eq. 4)" if progress else None)
        return {"state_dict": {k: v.cpu() for k, v in net.state_dict().items()}, "log": log}

    stored = ctx.cache.get_or_build("freestyle-i2t-pretrained", key, build, stages=(stage,))
    with seeded_build(ctx.seed, f"{stage}-{spatial}"):
        net = i2t.build_i2t(cfg, generator, spatial=spatial)
    net.load_state_dict(stored["state_dict"])
    return net.to(ctx.device).eval().requires_grad_(False), stored["log"]


def net_inputs(sets: list[FewShotSets], generator: TriPlaneGenerator, variant: Variant) -> torch.Tensor:
    """What the variant's network reads per identity: the edited front views (K, 3, R, R), or for
    ``NO_I2T`` G's planes of each identity's w (K, 3, C, r, r)."""
    if variant is Variant.NO_I2T:
        device = next(generator.parameters()).device
        with torch.no_grad():
            return generator.planes(torch.stack([s.w for s in sets]).to(device)).cpu()
    return torch.cat([s.front for s in sets])


def stylized(ctx, generator: TriPlaneGenerator, sets: list[FewShotSets], *, style: str, variant: Variant,
             keys: dict, perceptual, progress: bool = True) -> tuple[nn.Module, dict]:
    """The variant's network fine-tuned by Eq. (5)-(7) on ``sets`` (one style's D_s; ``perceptual``:
    Eq. 5's LPIPS), cached; ``keys`` name what D_s was made from (``G``: G's artefact config, the
    editor, Alg. 1's settings). Returns it (eval, frozen) and its log."""
    cfg: I2TConfig = ctx.profile.freestyle.i2t
    key = {"keys": keys, "style": style, "variant": variant.value, "i2t": settings_key(cfg),
           "code": module_version(__name__)}
    stage = "freestyle-i2t-finetune"

    def make() -> nn.Module:
        if variant is Variant.NO_I2T:
            with seeded_build(ctx.seed, f"{stage}-adapter"):
                return PlaneAdapter(plane_channels=generator.config.plane_channels)
        if variant is Variant.NO_PRETRAINING:
            with seeded_build(ctx.seed, f"{stage}-scratch"):
                return i2t.build_i2t(cfg, generator)
        return pretrained_i2t(ctx, generator, g_key=keys["G"], spatial=variant is not Variant.NO_SPATIAL,
                              progress=progress)[0]

    def build() -> dict:
        net = make().to(ctx.device).train().requires_grad_(True)
        views = torch.stack([s.fixed for s in sets])
        log = i2t.finetune(net, generator, net_inputs(sets, generator, variant), views, view_labels(sets[0]),
                           config=cfg, perceptual=perceptual, seed=ctx.seed,
                           checkpoint=ctx.cache.resume_path(stage, key),
                           progress=f"I2T {variant.value} {style}" if progress else None)
        return {"state_dict": {k: v.cpu() for k, v in net.state_dict().items()}, "log": log}

    stored = ctx.cache.get_or_build(stage, key, build, stages=(stage,))
    net = make()
    net.load_state_dict(stored["state_dict"])
    return net.to(ctx.device).eval().requires_grad_(False), stored["log"]


@torch.no_grad()
def portraits(net: nn.Module, generator: TriPlaneGenerator, inputs: torch.Tensor, labels: torch.Tensor) -> dict:
    """Renders G*(input, v) of each identity's network input (K, ...) at cameras ``labels`` (V, 25):
    ``image`` (K, V, 3, R, R) and ``image_depth`` (K, V, 1, r, r), on the CPU."""
    device = next(generator.parameters()).device
    images, depths = [], []
    for x in inputs:
        planes = net(x[None].to(device))
        out = i2t.render(generator, planes.expand(len(labels), -1, -1, -1, -1), labels.to(device))
        images.append(out["image"].cpu())
        depths.append(out["image_depth"].cpu())
    return {"image": torch.stack(images), "image_depth": torch.stack(depths)}
