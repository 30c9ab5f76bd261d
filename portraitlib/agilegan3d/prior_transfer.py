"""Adversarial transfer of the pretrained G to a style with L_prior (AgileGAN3D Sec. 3.1, Eq. 1; Table 3).

    L_prior = E_{z_s ~ N(0, I)} [min(0, -1 + D(S_t(z_s), p))] + E_{z ~ N(0, I)} [min(0, -1 - D(G_phi(z, p), p))]   (1)

D's real samples are the style prior's images x_s = S_t(E(x)) with their paired real photos'
camera labels p; G's fakes are G_phi(z, p) at those labels. EG3D's recipe otherwise (the
non-saturating form of the hinge above, dual discrimination, R1 on both images, pose-conditioning
swap, density regulariser, EMA), from the pretrained G and D at the paper's lr 0.002 and batch 4.
Every variant is a cached artefact keyed by its settings and set; L_guide (Eq. 5) is added by
``guided_transfer``.

    sets = prior_transfer.training_sets(ctx, prior, exemplars=..., regressor=..., ablation=True)
    G_t, art = prior_transfer.transfer(ctx, G, D, pretrained_art, sets["prior_full"], style="anime")
    error = prior_transfer.StylizationError(codes=prior_transfer.zspace_codes(E, photos), labels=..., targets=...)
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch

from portraitlib import cameras, metrics
from portraitlib.device import seeded_generator
from portraitlib.settings import settings_key
from portraitlib.provenance import module_version
from portraitlib.generator3d import build_networks, generator_config, render
from portraitlib.nets.discriminators import DualDiscriminator
from portraitlib.nets.encoders import HierarchicalVAEEncoder
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.training.eg3d import Train3DSettings, train_3d
from portraitlib.training.warm3d import frontal_labels

if TYPE_CHECKING:
    from portraitlib.agilegan3d.guided_transfer import Guide


@dataclass
class TrainingSet:
    """The real samples of one transfer run."""

    name: str
    """Short name, part of the cache key: ``exemplars``, ``prior_100``, ``prior_full``, ..."""
    images: torch.Tensor
    """(N, 3, R, R) in [0, 1]."""
    labels: torch.Tensor
    """(N, 25) their camera labels."""
    description: str
    """What the set is, for tables and figures."""


def training_sets(ctx, prior: dict, *, exemplars: torch.Tensor, regressor, ablation: bool) -> dict[str, TrainingSet]:
    """The full style prior (paired rows with their photos' labels); with ``ablation``, Table 3's
    variants too: the raw exemplars with poses estimated from them, nested random subsets of the
    prior (``transfer.subset_sizes``), and the full prior with every label estimated from the
    stylized image itself."""
    n = len(prior["images"])
    sets = {"prior_full": TrainingSet("prior_full", prior["images"], prior["labels"],
                                      f"full style prior ({n}), paired photo labels")}
    if not ablation:
        return sets
    sets["exemplars"] = TrainingSet("exemplars", exemplars, regressor.labels(exemplars),
                                    f"{len(exemplars)} raw exemplars, labels estimated from them")
    order = torch.randperm(n, generator=seeded_generator(ctx.seed), device="cpu").to(prior["images"].device)
    for size in ctx.profile.transfer.subset_sizes:
        if size >= n:
            raise ValueError(f"transfer.subset_sizes has {size}, but the style prior holds only {n} samples")
        rows = order[:size]
        sets[f"prior_{size}"] = TrainingSet(f"prior_{size}", prior["images"][rows], prior["labels"][rows],
                                            f"{size} style-prior samples, paired photo labels")
    sets["prior_full_estimated"] = TrainingSet("prior_full_estimated", prior["images"], prior["estimated_labels"],
                                               f"full style prior ({n}), labels estimated from the stylized images")
    return sets


def _key(ctx, pretrained_art: dict, style: str, prior_key: str, tset: TrainingSet, guide: Guide | None) -> dict:
    return {"pretrained": pretrained_art["config"], "transfer": settings_key(ctx.profile.transfer), "style": style,
            "prior": prior_key,
            "set": tset.name, "set_size": len(tset.images), "code": module_version(__name__),
            **({"guide": guide.key} if guide is not None else {})}


def transfer(ctx, generator: TriPlaneGenerator, discriminator: DualDiscriminator, pretrained_art: dict,
             tset: TrainingSet, *, style: str, prior_key: str, evaluate=None, guide: Guide | None = None,
             progress: bool = True) -> tuple[TriPlaneGenerator, dict]:
    """G_t: copies of G and D fine-tuned on ``tset`` (images at G's resolution) for
    ``transfer.steps``. ``evaluate(G_t) -> dict`` is called every ``eval_every`` steps and at the
    start; its ``score`` is logged, never used to choose (the last EMA weights are kept), the rest
    recorded in ``evaluations``. ``prior_key`` names the prior set's version (its folder name).
    With ``guide`` (notebook 05), L_guide is added at every G step: guided transfer learning.
    Returns G_t (frozen) and the artefact: log (losses, R1, density), evaluations, seconds."""
    tr = ctx.profile.transfer
    key = _key(ctx, pretrained_art, style, prior_key, tset, guide)
    cfg = generator_config(ctx)
    if tset.images.shape[-1] != cfg.img_resolution:
        raise ValueError(f"training images are {tset.images.shape[-1]} px but G renders {cfg.img_resolution} px")
    stage = f"eg3d-transfer-{style}-{tset.name}" + ("-guided" if guide is not None else "")

    def build() -> dict:
        g, d, _ = build_networks(ctx, cfg, stage=stage)
        g.load_state_dict(generator.state_dict())
        d.load_state_dict(discriminator.state_dict())
        g.requires_grad_(True)
        start = time.perf_counter()
        g_t, log = train_3d(g, d, tset.images, tset.labels, seed=ctx.seed, evaluate=evaluate,
                            settings=Train3DSettings(steps=tr.steps, batch=tr.batch, lr=tr.lr, r1_gamma=tr.r1_gamma,
                                                     eval_every=tr.eval_every, keep_best=False, bf16=ctx.bf16),
                            guide=guide, checkpoint=ctx.cache.resume_path(stage, key),
                            progress=f"G -> G_t {style} {tset.name}{' + L_guide' if guide else ''}" if progress else None)
        return {"G": g_t.state_dict(), "log": log, "evaluations": log.pop("evaluations", []),
                "seconds": time.perf_counter() - start, "description": tset.description, "size": len(tset.images)}

    art = ctx.cache.get_or_build(stage, key, build, stages=(stage,))
    g_t = ctx.build(stage, lambda: TriPlaneGenerator(config=cfg))
    g_t.load_state_dict(art["G"])
    return g_t.eval().requires_grad_(False), art


def zspace_codes(encoder: HierarchicalVAEEncoder, photos: torch.Tensor) -> Callable[[TriPlaneGenerator], torch.Tensor]:
    """Codes of photos for any fine-tuned copy of G: the z-space encoder's z (computed once) through
    that generator's own mapping, frontal conditioning (Toonify's and AgileGAN's way)."""
    with torch.no_grad():
        encoder.eval()
        z = torch.cat([encoder(photos[i:i + 64])[0][:, 0] for i in range(0, len(photos), 64)])
    return lambda generator: generator.mapping(z, frontal_labels(len(z), z.device))


def fixed_codes(ws: torch.Tensor) -> Callable[[TriPlaneGenerator], torch.Tensor]:
    """W+ codes (N, 17, w_dim) that every fine-tuned copy of G renders as they are (AgileGAN3D's way)."""
    return lambda generator: ws


class StylizationError:
    """AgileGAN3D's Stylization LPIPS and its relatives: held-out photos x, as codes for G_t
    (:func:`zspace_codes` or :func:`fixed_codes`), rendered by G_t at x's camera and compared with
    target images of the same photos: ``x_s``, the 2D style prior's stylization (the paper's
    measure), and, in the world, ``truth``, the true stylized render. ``other``: a second LPIPS
    backbone reported beside the first (the first is the score)."""

    def __init__(self, *, codes: Callable[[TriPlaneGenerator], torch.Tensor], labels: torch.Tensor,
                 targets: dict[str, torch.Tensor], perceptual: metrics.LPIPS, other: metrics.LPIPS | None = None,
                 score: str = "x_s"):
        if score not in targets:
            raise ValueError(f"score target {score!r} is not among the targets {sorted(targets)}")
        self.codes, self.labels, self.targets, self.score = codes, labels, targets, score
        self.perceptuals = [perceptual] + ([other] if other is not None and other.name != perceptual.name else [])

    @torch.no_grad()
    def renders(self, generator: TriPlaneGenerator) -> torch.Tensor:
        """(N, 3, R, R) G(E(x)) at x's camera, in [0, 1]."""
        return render(generator, self.codes(generator), self.labels)["image"]

    def __call__(self, generator: TriPlaneGenerator) -> dict:
        images = self.renders(generator)
        row = {}
        for name, target in self.targets.items():
            row[name] = {**{p.name: p(images, target).mean().item() for p in self.perceptuals},
                         "mse": metrics.mse(images, target).mean().item(),
                         "ssim": metrics.ssim(images, target).mean().item()}
        row["score"] = row[self.score][self.perceptuals[0].name]
        return row


def with_label_noise(tset: TrainingSet, degrees: float, *, seed: int) -> TrainingSet:
    """``tset`` with Gaussian noise of std ``degrees`` added to every label's yaw and pitch (the
    pose-accuracy ablation); named ``<name>_noise<degrees>``."""
    angles = cameras.angles_from_labels(tset.labels)
    noise = torch.randn(len(angles), 2, generator=seeded_generator(seed), device="cpu").to(angles.device) * degrees
    labels = cameras.labels_from_angles(angles[:, 0] + noise[:, 0], angles[:, 1] + noise[:, 1])
    return TrainingSet(f"{tset.name}_noise{degrees:g}", tset.images, labels,
                       f"{tset.description}, yaw and pitch labels with {degrees:g} deg noise")
