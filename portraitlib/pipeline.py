"""One Study: every stage of the study for one (profile, seed, device), built or loaded once.

    study = pl.Study(ctx)                  # ctx = pl.setup("05_guided_transfer", profile=profile)
    G, D, E_z, art = study.pretrained      # notebook 02's G (cached artefact, built on first use)
    E, _ = study.wplus_encoder(cycle=True) # notebook 04's encoder
    G_t, run = study.transfer("anime", "prior_full", guided=True)   # notebook 05's run

Each property or call returns the same object on every use within a study, and a cached artefact
(built by the stage's own function, keyed by its settings and code) on every later run. Notebooks
keep the story - the prose, the equation, the call, the figure - and ask the study for what the
earlier notebooks made; ``portrait.study_stylizer``, the command line and the report do the same.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import torch

from portraitlib import cameras, consistency, generator3d, look, metrics, pose, quality, study_data
from portraitlib.agilegan3d import cycle_encoder, guided_transfer, prior_transfer, style_prior
from portraitlib.nets.discriminators import DualDiscriminator
from portraitlib.device import seeded_generator
from portraitlib.nets.encoders import HierarchicalVAEEncoder, WPlusEncoder
from portraitlib.nets.stylegan2 import StyleGAN2Generator
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.pretrain.world import CODE_DIM, IMAGE_CODE_DIM, WorldCodes, image_codes, render_views
from portraitlib.study import StudyContext
from portraitlib.training.warm3d import frontal_labels
from portraitlib.world import datasets


class Pretrained(NamedTuple):
    """Notebook 02's networks: G and D (EG3D), the z-space encoder E_z of photos, the artefact."""

    G: TriPlaneGenerator
    D: DualDiscriminator
    E_z: HierarchicalVAEEncoder
    artefact: dict


class Study:
    """The stages of one study run for ``styles`` (default: the profile's); see the module
    docstring. ``progress`` shows training bars."""

    def __init__(self, ctx: StudyContext, *, styles: list[str] | None = None, progress: bool = True):
        known = list(ctx.profile.world.styles)
        self.styles = known if styles is None else list(styles)
        unknown = sorted(set(self.styles) - set(known))
        if unknown:
            raise ValueError(f"unknown styles {unknown}; profile {ctx.profile.name!r} has {known}")
        self.ctx, self.progress = ctx, progress
        self._memo: dict[tuple, object] = {}

    def _once(self, key: tuple, build):
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    @functools.cached_property
    def nets(self) -> study_data.LossNets:
        """The frozen perceptual and identity networks of the losses and measures."""
        return study_data.loss_nets(self.ctx)

    @functools.cached_property
    def images(self) -> study_data.StudyImages:
        """The study's photos and exemplars at the data's resolution (notebook 01's), on the device."""
        return study_data.load_images(self.ctx)

    @functools.cached_property
    def regressor(self) -> pose.PoseRegressor:
        """The pose regressor of (stylized) images (notebook 00)."""
        return pose.study_regressor(cache=self.ctx.cache, config=self.ctx.profile.world, seed=self.ctx.seed,
                                    device=self.ctx.device)[0]

    @functools.cached_property
    def look_classifier(self) -> look.LookClassifier:
        """The look classifier of the real look and every style (notebook 00)."""
        return look.study_look_classifier(cache=self.ctx.cache, config=self.ctx.profile.world, seed=self.ctx.seed,
                                          device=self.ctx.device)[0]

    @functools.cached_property
    def judge(self) -> quality.Judge:
        """The "does it work" measures of a batch of images (:class:`portraitlib.quality.Judge`):
        face detection, look accuracy, pose error, identification and LPIPS-VGG to the truth."""
        vgg = self.nets.kid_features if self.nets.kid_features.name == "lpips_vgg" else metrics.load_lpips("vgg")
        return quality.Judge(regressor=self.regressor, classifier=self.look_classifier,
                             identity_net=self.nets.identity, perceptual=vgg.to(self.ctx.device))

    @torch.no_grad()
    def judge_samples(self, generator: TriPlaneGenerator, *, look: str, n: int = 16) -> dict[str, float]:
        """The measures of n samples G(z) (z seeded by the study's seed, mapped at the frontal camera)
        rendered at yaws spread over ``quality.GATE_YAWS``, meant to show ``look``."""
        device, judge = self.ctx.device, self.judge
        z = torch.randn(n, generator.config.z_dim, generator=self.ctx.generator(17), device=device)
        labels = quality.gate_labels(n, device=device)
        images = generator3d.render(generator, generator.mapping(z, frontal_labels(n, device)), labels)["image"]
        return judge(images, look=look, labels=labels)

    @torch.no_grad()
    def judge_world_samples(self, generator: TriPlaneGenerator | StyleGAN2Generator, *, n: int = 32) -> dict[str, float]:
        """The measures of a base model whose z is the head world's code (G_world, S_world): n samples
        at z ~ N(0, I) (the study's seed) at yaws spread over ``quality.GATE_YAWS``, against the
        world's true photo of each z at the same camera (identification among the n)."""
        z = torch.randn(n, CODE_DIM, generator=seeded_generator(self.ctx.seed + 17))
        labels = quality.gate_labels(n)
        angles = cameras.angles_from_labels(labels)
        truth = render_views(WorldCodes.from_z(z), angles, config=self.ctx.profile.world).images
        device = self.ctx.device
        if isinstance(generator, TriPlaneGenerator):
            if generator.config.z_dim != CODE_DIM:
                raise ValueError(f"G's z has {generator.config.z_dim} numbers, not the world code's {CODE_DIM}")
            images = generator3d.render(generator, generator.mapping(z.to(device), labels.to(device)),
                                        labels.to(device))["image"]
        else:
            if generator.z_dim != IMAGE_CODE_DIM:
                raise ValueError(f"S's z has {generator.z_dim} numbers, not the image code's {IMAGE_CODE_DIM}")
            images = ((generator(image_codes(z, angles).to(device)) + 1) / 2).clamp(0, 1)
        truth = generator3d.resize(truth, images.shape[-1]).to(device)
        return self.judge(images, look="real", labels=labels.to(device), truth=truth)

    @torch.no_grad()
    def judge_views(self, generator: TriPlaneGenerator, codes: torch.Tensor, *, look: str) -> dict[str, float]:
        """The measures of a 3D stage's portraits of held-out photos: G(codes) of the first N held-out
        photos (N = len(codes)) at each of the evaluation's novel yaws, meant to show ``look``; in
        the world, against the true render of each photo's head in ``look`` at the same camera
        (identification among the N photos at each view). The mean over the views."""
        yaws = list(self.ctx.profile.evaluation.novel_yaws)
        n, device = len(codes), codes.device
        truth = None
        if self.data.test_truth is not None:
            angles = torch.tensor([[y, 0.0, 0.0] for y in yaws], device="cpu").repeat(n, 1)
            latents = self.data.test_truth["latents"][:n].cpu().repeat_interleave(len(yaws), 0)
            world = datasets.cached_views(cache=self.ctx.cache, latents=latents, angles=angles, look=look,
                                          config=self.ctx.profile.world, device=device)
            truth = generator3d.resize(world.images.to(device), self.size).unflatten(0, (n, len(yaws)))
        per_view = []
        for j, label in enumerate(consistency.yaw_labels(yaws, device=device)):
            labels = label.expand(n, -1)
            images = generator3d.render(generator, codes, labels)["image"]
            per_view.append(self.judge(images, look=look, labels=labels, truth=None if truth is None else truth[:, j]))
        return {k: sum(v[k] for v in per_view) / len(per_view) for k in per_view[0]} | {"n": n * len(yaws)}

    @functools.cached_property
    def priors(self) -> style_prior.StylePriors:
        """Notebook 01's S, E and, for the study's styles, S_t and the prior sets."""
        return style_prior.study_priors(self.ctx, self.images, self.nets, regressor=self.regressor,
                                        styles=self.styles, progress=self.progress)

    @property
    def size(self) -> int:
        """G's output resolution."""
        return generator3d.generator_config(self.ctx).img_resolution

    @functools.cached_property
    def data(self) -> study_data.StudyImages:
        """The study's images at G's resolution (notebooks 02-08)."""
        return generator3d.at_resolution(self.images, self.size)

    @functools.cached_property
    def pretrained(self) -> Pretrained:
        """Notebook 02: G, D, E_z and the artefact."""
        return Pretrained(*generator3d.pretrained(self.ctx, self.data, self.nets, progress=self.progress))

    def wplus_encoder(self, *, cycle: bool) -> tuple[WPlusEncoder, dict]:
        """Notebook 04: AgileGAN3D's W+ encoder (with or without L_cyc) and its artefact."""
        return self._once(("wplus", cycle), lambda: cycle_encoder.wplus_encoder(
            self.ctx, self.data, self.nets, self.pretrained.G, self.pretrained.artefact, cycle=cycle,
            progress=self.progress))

    @functools.cached_property
    def photo_codes(self) -> torch.Tensor:
        """W+ codes (N, 17, w_dim) of the training photos through the cycle encoder (L_guide's)."""
        return cycle_encoder.encode(self.wplus_encoder(cycle=True)[0], self.data.real_train)

    def prior(self, style: str) -> dict:
        """The style prior set of ``style`` at G's resolution (see ``style_prior.load_prior``)."""
        def build():
            prior = self.priors.prior(style)
            prior["images"] = generator3d.resize(prior["images"], self.size)
            return prior
        return self._once(("prior", style), build)

    def training_sets(self, style: str, *, ablation: bool = False) -> dict[str, prior_transfer.TrainingSet]:
        """The style's transfer sets (with ``ablation``, Table 3's variants too)."""
        return self._once(("sets", style, ablation), lambda: prior_transfer.training_sets(
            self.ctx, self.prior(style), exemplars=self.data.exemplars[style], regressor=self.regressor,
            ablation=ablation))

    def guide(self, style: str, set_name: str) -> guided_transfer.Guide:
        """L_guide of a run on the full prior (``prior_full`` or ``prior_full_estimated``)."""
        tset = self.training_sets(style, ablation=set_name != "prior_full")[set_name]
        return guided_transfer.make_guide(self.ctx, self.prior(style), tset, lambda: self.photo_codes, nets=self.nets,
                                          encoder_art=self.wplus_encoder(cycle=True)[1])

    def transfer(self, style: str, set_name: str = "prior_full", *, guided: bool = False, evaluate=None,
                 tset: prior_transfer.TrainingSet | None = None) -> tuple[TriPlaneGenerator, dict]:
        """Notebooks 03 (L_prior) and 05 (``guided``: L_prior + L_guide): G_t of ``style`` trained on
        the named set (or on ``tset``, e.g. a label-noise variant) and its artefact. ``evaluate``
        only matters when the run is not cached yet (its scores are recorded in the artefact)."""
        if tset is None:
            tset = self.training_sets(style, ablation=set_name != "prior_full")[set_name]
        guide = self.guide(style, tset.name) if guided else None
        key = ("transfer", style, tset.name, len(tset.images), guided)
        return self._once(key, lambda: prior_transfer.transfer(
            self.ctx, self.pretrained.G, self.pretrained.D, self.pretrained.artefact, tset, style=style,
            guide=guide, evaluate=evaluate, prior_key=self.priors.folders[style].name,
            progress=self.progress))
