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

from portraitlib import generator3d
from portraitlib.agilegan3d import cycle_encoder
from portraitlib.device import device_of
from portraitlib.pipeline import Study
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
        photos = photos.to(device_of(self.encoder)).float().clamp(0, 1)
        return cycle_encoder.encode(self.encoder, generator3d.resize(photos, self.resolution))

    def render(self, photos: torch.Tensor, *, style: str, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each photo rendered in ``style`` from each camera of ``labels`` (K, 25): ``image``
        (N, K, 3, R, R) in [0, 1] and ``depth`` (N, K, 1, r, r), ray distance."""
        return self.render_codes(self.codes(photos), style=style, labels=labels)

    def render_codes(self, codes: torch.Tensor, *, style: str, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """:meth:`render` for photos already turned into :meth:`codes` (N, 17, w_dim)."""
        if style not in self.generators:
            raise ValueError(f"unknown style {style!r}; this study has {sorted(self.generators)}")
        n, k = len(codes), len(labels)
        labels = labels.to(codes.device)
        out = generator3d.render(self.generators[style], codes.repeat_interleave(k, 0), labels.repeat(n, 1))
        return {"image": out["image"].unflatten(0, (n, k)), "depth": out["image_depth"].unflatten(0, (n, k))}


def study_stylizer(ctx, *, styles: list[str] | None = None, progress: bool = True, study: Study | None = None
                   ) -> Stylizer:
    """The stylizer of the profile's study for ``styles`` (default: all): the cycle-trained W+
    encoder (notebook 04) and each style's guided G_t (notebook 05), from the cache (or built in
    order, without the notebooks' figures; with a read-only cache a stage not built yet raises
    :class:`portraitlib.cache.MissingArtefactError`). Pass the notebook's ``study`` to share its stages."""
    study = study or Study(ctx, styles=styles, progress=progress)
    styles = study.styles if styles is None else list(styles)
    encoder, _ = study.wplus_encoder(cycle=True)
    generators = {style: study.transfer(style, "prior_full", guided=True)[0] for style in styles}
    return Stylizer(encoder=encoder, generators=generators,
                    provenance={"G": study.pretrained.artefact["source"], "networks": study.nets.names(),
                                "profile": ctx.profile.name, "seed": ctx.seed})


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
