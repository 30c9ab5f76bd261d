"""3DAvatarGAN's domain adaptation of G_s to a 2D style set (Sec. 3.1-3.2), and its measures
against the world's truth.

G_t starts from G_s and its dual discriminator and is trained adversarially on the 2D set (the
study's transfer settings: steps, batch, lr, R1). A :class:`Variant` sets what the paper varies:

- the cameras G_t's fakes are rendered at (:class:`CameraSource`): the set's true cameras; the
  camera the keypoint alignment found (Sec. 3.1) with G's own pose distribution; G's own
  camera (EG3D's default, unshifted); or the pose regressor's estimates from the stylized images;
- whether D sees camera labels (EG3D) or none (3DAvatarGAN's unconditional dual D);
- R(Delta s) and R(D) (:mod:`portraitlib.avatar3d.regularisers`); without both, with the
  unconditional D, it is naive fine-tuning.

Departures, stated: the paper trains D from scratch for ~500K images; at the study's budget D
starts from G_world's, its camera input zero when unconditional. The mini G's direct linear path
from w to the planes (``plane_head``, not in EG3D) stays frozen (``avatar3d.freeze_plane_head``):
trained adversarially, its weights of each plane texel move one by one and the heads grow a grid.

    runs = {v.name: adapt(ctx, G, D, art, style_set, v, cameras=fakes[v.cameras], style="anime") for v in VARIANTS}
    scores = depth_scores(G_t, test_set)   # per identity: depth error, relief ratio; the renders
"""
from __future__ import annotations

import dataclasses
import enum
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from portraitlib.avatar3d.alignment import Camera, StyleSet
from portraitlib.avatar3d.regularisers import Regularisers
from portraitlib.avatar3d.tps import DeformedGenerator, TPSNet
from portraitlib.cache import tensor_digest
from portraitlib.generator3d import build_networks, generator_config, render
from portraitlib.nets.discriminators import DualDiscriminator
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.provenance import module_version
from portraitlib.settings import settings_key
from portraitlib.training.eg3d import Train3DSettings, train_3d
from portraitlib.training.warm3d import frontal_labels

TEXTURE_WEIGHT, DEPTH_WEIGHT, BENDING_WEIGHT = 0.001, 0.005, 1.0
"""The paper's weights of R(Delta s), R(D) and R(T_2) (the TPS's bending energy, our reading)."""
FOREGROUND = 0.99
"""A pixel is the head's when the true render's coverage exceeds this (depth is compared there)."""


class CameraSource(str, enum.Enum):
    """Where G_t's training cameras come from."""

    TRUTH = "truth"
    """The 2D set's own cameras (the world knows them; for a stylized photo, AgileGAN3D's paired label)."""
    ALIGNED = "aligned"
    """G's pose distribution under the camera keypoint alignment found (Sec. 3.1)."""
    DEFAULT = "default"
    """G's pose distribution under G's own camera (EG3D's default)."""
    ESTIMATED = "estimated"
    """The pose regressor's yaw and pitch of each stylized image, at G's radius."""


@dataclass(frozen=True)
class Variant:
    """One adaptation run of Table 3's camera section."""

    name: str
    """Its row name."""
    cameras: CameraSource
    """Where the fakes' (and, with a conditioned D, the reals') cameras come from."""
    conditioned: bool = False
    """D sees camera labels (EG3D); False: the unconditional dual D (3DAvatarGAN)."""
    texture: bool = True
    """R(Delta s) on the texture layers."""
    depth: bool = True
    """R(D)."""


METHOD = Variant("3DAvatarGAN", CameraSource.ALIGNED)
"""The paper's method: aligned cameras, unconditional D, both regularisers."""
VARIANTS = (METHOD,
            Variant("without R(D)", CameraSource.ALIGNED, depth=False),
            Variant("naive fine-tuning", CameraSource.ALIGNED, texture=False, depth=False),
            Variant("true cameras", CameraSource.TRUTH),
            Variant("EG3D's default camera", CameraSource.DEFAULT),
            Variant("cameras estimated from the stylized images", CameraSource.ESTIMATED),
            Variant("conditioned D, true cameras", CameraSource.TRUTH, conditioned=True))
"""Table 3's camera rows (on the ablation style); the other styles run :data:`METHOD` only."""


@dataclass(frozen=True)
class Cameras:
    """The cameras of one source: labels of the fakes (and of the reals, for a conditioned D)."""

    fakes: torch.Tensor
    """(M, 25) the cameras G_t's fakes are drawn from."""
    reals: torch.Tensor | None
    """(N, 25) each training image's camera, or None where the source has none per image."""
    ray_bounds: tuple[float, float]
    """G's (near, far) for these cameras."""


def camera_sources(style_set: StyleSet, *, aligned: Camera, poses: torch.Tensor, estimated: torch.Tensor,
                   config) -> dict[CameraSource, Cameras]:
    """Every source's cameras for training on ``style_set``: ``aligned`` is the alignment's camera,
    ``poses`` (M, 3) G's own pose draws, ``estimated`` (N, 25) the pose regressor's labels of the
    set's images (G's radius), ``config`` G's :class:`TriPlaneConfig`."""
    default = Camera()
    truth, by_image = style_set.labels(), estimated.cpu()
    if len(by_image) != len(truth):
        raise ValueError(f"{len(by_image)} estimated cameras for {len(truth)} images")
    return {CameraSource.TRUTH: Cameras(truth, truth, style_set.camera.ray_bounds(config)),
            CameraSource.ALIGNED: Cameras(aligned.labels(poses), None, aligned.ray_bounds(config)),
            CameraSource.DEFAULT: Cameras(default.labels(poses), None, default.ray_bounds(config)),
            CameraSource.ESTIMATED: Cameras(by_image, by_image, default.ray_bounds(config))}


def adapt(ctx, generator: TriPlaneGenerator, discriminator: DualDiscriminator, pretrained_art: dict,
          style_set: StyleSet, variant: Variant, *, cameras: Cameras, style: str,
          progress: bool = True) -> tuple[TriPlaneGenerator, dict]:
    """G_t: G_s (``generator``) and its D fine-tuned on ``style_set`` (images at G's resolution) as
    ``variant`` says; a cached artefact. Returns G_t (frozen) and the
    artefact (G_t's and D's weights, log, seconds). Steps: ``avatar3d.steps``, else ``transfer.steps``."""
    if variant.conditioned and cameras.reals is None:
        raise ValueError(f"a conditioned D needs each image's camera; source {variant.cameras.value} has none")
    tr, cfg = ctx.profile.transfer, generator_config(ctx)
    steps = ctx.profile.avatar3d.steps or tr.steps
    if style_set.images.shape[-1] != cfg.img_resolution:
        raise ValueError(f"the style set is {style_set.images.shape[-1]} px but G renders {cfg.img_resolution} px")
    key = {"pretrained": pretrained_art["config"], "transfer": settings_key(tr), "steps": steps, "style": style,
           "freeze_plane_head": ctx.profile.avatar3d.freeze_plane_head,
           "variant": dataclasses.asdict(variant), "set": tensor_digest(style_set.images),
           "cameras": tensor_digest(cameras.fakes) + ("" if cameras.reals is None else tensor_digest(cameras.reals)),
           "ray_bounds": list(cameras.ray_bounds), "regularisers": [TEXTURE_WEIGHT, DEPTH_WEIGHT],
           "code": module_version(__name__)}
    stage = f"avatar3d-{style}-{variant.cameras.value}"
    reals = cameras.reals if cameras.reals is not None else torch.zeros(len(style_set.images), 25)

    def build() -> dict:
        g, d, _ = build_networks(ctx, cfg, stage=stage)
        g.load_state_dict(generator.state_dict())
        d.load_state_dict(discriminator.state_dict())
        g.requires_grad_(True)
        if ctx.profile.avatar3d.freeze_plane_head and g.config.plane_head:
            g.backbone.plane_head.requires_grad_(False)
        reg = (Regularisers(source=generator, target=g, texture=TEXTURE_WEIGHT * variant.texture,
                            depth=DEPTH_WEIGHT * variant.depth) if variant.texture or variant.depth else None)
        start = time.perf_counter()
        g_t, log = train_3d(g, d, style_set.images, reals, seed=ctx.seed, fake_labels=cameras.fakes, regulariser=reg,
                            settings=Train3DSettings(steps=steps, batch=tr.batch, lr=tr.lr, r1_gamma=tr.r1_gamma,
                                                     keep_best=False, bf16=ctx.bf16, d_conditioned=variant.conditioned,
                                                     ray_bounds=cameras.ray_bounds),
                            checkpoint=ctx.cache.resume_path(stage, key),
                            progress=f"G_s -> G_t {style}, {variant.name}" if progress else None)
        return {"G": g_t.state_dict(), "D": d.state_dict(), "log": log, "seconds": time.perf_counter() - start}

    art = ctx.cache.get_or_build(stage, key, build, stages=(stage,))
    g_t = ctx.build(stage, lambda: TriPlaneGenerator(config=cfg))
    g_t.load_state_dict(art["G"])
    return g_t.eval().requires_grad_(False), art


def deform(ctx, generator_t: TriPlaneGenerator, adapted_art: dict, style_set: StyleSet, *, cameras: Cameras,
           style: str, progress: bool = True) -> tuple[DeformedGenerator, dict]:
    """G_t with a TPS of its front plane (Sec. 3.4), trained after G_t with G_t frozen: the TPS net
    and the adaptation's D (``adapted_art["D"]``, unconditional) train adversarially on
    ``style_set`` at ``cameras``, the G loss plus :data:`BENDING_WEIGHT` R(T_2); a cached artefact.
    Steps: ``avatar3d.tps_steps``, else the adaptation's. Returns the deformed G (frozen) and the
    artefact (TPS weights, log, seconds)."""
    tr, av, cfg = ctx.profile.transfer, ctx.profile.avatar3d, generator_config(ctx)
    steps = av.tps_steps or av.steps or tr.steps
    key = {"G_t": tensor_digest(*generator_t.state_dict().values()), "D_t": tensor_digest(*adapted_art["D"].values()),
           "transfer": settings_key(tr), "steps": steps, "style": style, "grid": av.tps_grid,
           "max_offset": av.tps_max_offset, "set": tensor_digest(style_set.images),
           "cameras": tensor_digest(cameras.fakes),
           "ray_bounds": list(cameras.ray_bounds), "bending": BENDING_WEIGHT, "code": module_version(__name__)}
    stage = f"avatar3d-{style}-tps"

    def make() -> TPSNet:
        return TPSNet(channels=cfg.plane_channels, w_dim=cfg.w_dim, resolution=cfg.plane_resolution,
                      grid=av.tps_grid, max_offset=av.tps_max_offset)

    def build() -> dict:
        _, d, _ = build_networks(ctx, cfg, stage=stage)
        d.load_state_dict(adapted_art["D"])
        g = DeformedGenerator(generator=generator_t, tps=ctx.build(stage, make).requires_grad_(True))
        start = time.perf_counter()
        g_ema, log = train_3d(g, d, style_set.images, torch.zeros(len(style_set.images), 25), seed=ctx.seed,
                              fake_labels=cameras.fakes,
                              regulariser=lambda fake, ws: BENDING_WEIGHT * g.bending(ws).mean(),
                              settings=Train3DSettings(steps=steps, batch=tr.batch, lr=tr.lr, r1_gamma=tr.r1_gamma,
                                                       keep_best=False, bf16=ctx.bf16, d_conditioned=False,
                                                       density_every=0, ray_bounds=cameras.ray_bounds),
                              checkpoint=ctx.cache.resume_path(stage, key),
                              progress=f"TPS of G_t's front plane, {style}" if progress else None)
        return {"tps": g_ema.tps.state_dict(), "log": log, "seconds": time.perf_counter() - start}

    art = ctx.cache.get_or_build(stage, key, build, stages=(stage,))
    tps = ctx.build(stage, make)
    tps.load_state_dict(art["tps"])
    return DeformedGenerator(generator=generator_t, tps=tps).eval().requires_grad_(False), art


@torch.no_grad()
def depth_scores(generator: TriPlaneGenerator, style_set: StyleSet, *, batch: int = 32) -> dict[str, torch.Tensor]:
    """G's renders of the set's identities (their world codes) at the set's true cameras, against
    the true depth on the head's pixels (coverage > :data:`FOREGROUND` at G's ray resolution):

    - ``depth_error`` (N,): mean |D_G - D_true|, world units;
    - ``relief`` (N,): G's mean |D - mean D| over those pixels divided by the truth's (1: as deep
      as the truth, 0: flat);
    - ``images`` (N, 3, R, R) in [0, 1], ``depth`` (N, 1, r, r) G's depth, ``true_depth`` the
      truth's at r (NaN off the head)."""
    device = next(generator.parameters()).device
    z = style_set.codes(generator.config.z_dim).to(device)
    labels = style_set.labels().to(device)
    ws = generator.mapping(z, frontal_labels(len(z), device))
    out = render(generator, ws, labels, batch=batch, ray_bounds=style_set.camera.ray_bounds(generator.config))
    images, depth = out["image"].cpu(), out["image_depth"].float().cpu()
    r = depth.shape[-1]
    coverage = F.interpolate(style_set.mask, size=(r, r), mode="area")
    mask = coverage > FOREGROUND
    truth = F.interpolate(style_set.depth * style_set.mask, size=(r, r), mode="area") / coverage.clamp_min(1e-6)
    truth = torch.where(mask, truth, torch.full_like(truth, float("nan")))
    count = mask.flatten(1).sum(1).clamp_min(1)

    def masked_mean(x: torch.Tensor) -> torch.Tensor:
        return torch.where(mask, x, torch.zeros_like(x)).flatten(1).sum(1) / count

    def relief(d: torch.Tensor) -> torch.Tensor:
        return masked_mean((d - masked_mean(d).view(-1, 1, 1, 1)).abs())

    error = masked_mean((depth - torch.nan_to_num(truth)).abs())
    return {"depth_error": error, "relief": relief(depth) / relief(torch.nan_to_num(truth)).clamp_min(1e-6),
            "images": images, "depth": depth, "true_depth": truth}
