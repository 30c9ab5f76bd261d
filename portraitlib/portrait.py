"""One photo to a stylized 3D portrait: the function notebooks 06-08 and the command line use.

    stylizer = portrait.study_stylizer(ctx)                 # every stage from the cache (01-05)
    out = stylizer.render(photos, style="anime", labels=consistency.yaw_labels([-30, 0, 30]))

A photo (aligned as EG3D crops faces, in [0, 1], at any resolution) becomes W+ codes through the
cycle-trained encoder; the style's guided generator G_t renders those codes at any cameras.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from portraitlib import generator3d, identity, inversion3d, metrics, pose, style_prior, transfer3d
from portraitlib.nets.encoders import WPlusEncoder
from portraitlib.nets.triplane import TriPlaneGenerator


@dataclass
class Stylizer:
    """The encoder and the per-style generators of the study, with what produced them."""

    encoder: WPlusEncoder
    """AgileGAN3D's W+ encoder (trained with L_cyc) of the pretrained G."""
    generators: dict[str, TriPlaneGenerator]
    """Per style, G_t after guided transfer learning (full prior, paired labels)."""
    provenance: dict
    """Which weights and settings produced the networks (for every figure and table)."""

    @property
    def resolution(self) -> int:
        return next(iter(self.generators.values())).config.img_resolution

    def codes(self, photos: torch.Tensor) -> torch.Tensor:
        """W+ codes (N, 17, w_dim) of aligned photos (N, 3, R, R) in [0, 1]."""
        if photos.ndim != 4 or photos.shape[1] != 3:
            raise ValueError(f"photos must be (N, 3, R, R) RGB in [0, 1], got shape {tuple(photos.shape)}")
        return inversion3d.encode(self.encoder, generator3d.resize(photos.float().clamp(0, 1), self.resolution))

    def render(self, photos: torch.Tensor, *, style: str, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each photo rendered in ``style`` from each camera of ``labels`` (K, 25): ``image``
        (N, K, 3, R, R) in [0, 1] and ``depth`` (N, K, 1, r, r), ray distance."""
        return self.render_codes(self.codes(photos), style=style, labels=labels)

    def render_codes(self, codes: torch.Tensor, *, style: str, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """:meth:`render` for photos already turned into :meth:`codes` (N, 17, w_dim)."""
        if style not in self.generators:
            raise ValueError(f"unknown style {style!r}; this study has {sorted(self.generators)}")
        n, k = len(codes), len(labels)
        out = generator3d.render(self.generators[style], codes.repeat_interleave(k, 0), labels.repeat(n, 1))
        return {"image": out["image"].unflatten(0, (n, k)), "depth": out["image_depth"].unflatten(0, (n, k))}


def study_stylizer(ctx, *, styles: list[str] | None = None, progress: bool = True) -> Stylizer:
    """The stylizer of the profile's study for ``styles`` (default: all), every stage loaded from
    the cache (or built: notebooks 01-05 in order, without their figures; with a read-only cache a
    stage not built yet raises :class:`portraitlib.cache.MissingArtefactError`)."""
    styles = list(ctx.profile.world.styles) if styles is None else list(styles)
    unknown = sorted(set(styles) - set(ctx.profile.world.styles))
    if unknown:
        raise ValueError(f"unknown styles {unknown}; profile {ctx.profile.name!r} has {list(ctx.profile.world.styles)}")
    nets = style_prior.LossNets(perceptual=metrics.load_lpips(ctx.profile.metrics.lpips, seed=ctx.seed),
                                identity=identity.load_identity_net())
    data_2d = style_prior.load_images(ctx)
    regressor, _ = pose.study_regressor(cache=ctx.cache, config=ctx.profile.world, seed=ctx.seed)
    priors = style_prior.study_priors(ctx, data_2d, nets, regressor=regressor, styles=styles, progress=progress)
    size = generator3d.generator_config(ctx).img_resolution
    data = generator3d.at_resolution(data_2d, size)
    g, d, _, pretrained_art = generator3d.pretrained(ctx, data, nets, progress=progress)
    encoder, encoder_art = inversion3d.wplus_encoder(ctx, data, nets, g, pretrained_art, cycle=True, progress=progress)
    photo_codes = inversion3d.encode(encoder, data.real_train)
    generators = {}
    for style in styles:
        prior = priors.prior(style)
        prior["images"] = generator3d.resize(prior["images"], size)
        tset = transfer3d.training_sets(ctx, prior, exemplars=data.exemplars[style], regressor=regressor,
                                        ablation=False)["prior_full"]
        guide = transfer3d.make_guide(ctx, prior, tset, photo_codes, perceptual=nets.perceptual, encoder_art=encoder_art)
        generators[style], _ = transfer3d.transfer(ctx, g, d, pretrained_art, tset, style=style, guide=guide,
                                                   prior_key=priors.folders[style].name, progress=progress)
    return Stylizer(encoder=encoder, generators=generators,
                    provenance={"G": pretrained_art["source"], "networks": nets.names(), "profile": ctx.profile.name,
                                "seed": ctx.seed})


def latency(stylizer: Stylizer, photo: torch.Tensor, *, style: str, label: torch.Tensor, repeats: int = 20) -> dict:
    """Seconds from an aligned photo (1, 3, R, R) to one view (codes, then a render at ``label``
    (1, 25)): ``median`` and ``best`` of ``repeats`` timed runs after one untimed warm-up, and the
    threads torch used."""
    def once():
        with torch.no_grad():
            return stylizer.render(photo, style=style, labels=label)

    once()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    times.sort()
    return {"median": times[len(times) // 2], "best": times[0], "repeats": repeats, "threads": torch.get_num_threads()}
