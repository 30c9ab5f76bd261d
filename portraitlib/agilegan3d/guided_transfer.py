"""Guided transfer learning (AgileGAN3D Sec. 3.3, Eq. 5): L_prior plus a reconstruction loss of the
paired style prior through the frozen W+ encoder.

    L_guide = L_2(x_s, x^_s) + L_lpips(x_s, x^_s),   x^_s = G_phi(E_theta(x), p)   (5)

x is a real training photo with camera p, x_s = S_t(E(x)) its 2D stylization (Sec. 3.1) and
E_theta the cycle-trained encoder (Sec. 3.2), frozen like the style prior; G_phi and D are
fine-tuned with L_prior + L_guide (``prior_transfer.transfer(..., guide=make_guide(...))``).
"""
from __future__ import annotations

from typing import Callable

import torch

from portraitlib import metrics
from portraitlib.agilegan3d.prior_transfer import TrainingSet
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.study_data import LossNets


class Guide:
    """L_guide (Eq. 5), a loss of G: for random paired rows of the prior, L2 + LPIPS between x_s and
    G_t(E(x), p), with the frozen encoder's W+ codes of the photos x, times ``weight``. ``version``
    (the encoder artefact's config) keys the runs that use it. The codes and the LPIPS network are
    made on the first step: a run loaded from the cache (the stylize command's) needs only the key."""

    def __init__(self, *, codes: Callable[[], torch.Tensor], targets: torch.Tensor, labels: torch.Tensor,
                 perceptual: Callable[[], metrics.LPIPS], perceptual_name: str, batch: int, weight: float,
                 version: dict):
        if not len(targets) == len(labels):
            raise ValueError("targets and labels must have one row per pair")
        self.targets, self.labels, self.batch, self.weight = targets, labels, batch, weight
        self._make = {"codes": codes, "perceptual": perceptual}
        self._made: dict = {}
        self.key = {"encoder": version, "weight": weight, "batch": batch, "pairs": len(targets),
                    "perceptual": perceptual_name}

    def _get(self, name: str):
        if name not in self._made:
            self._made[name] = self._make[name]()
        return self._made[name]

    @property
    def codes(self) -> torch.Tensor:
        """(P, 17, w_dim) the encoder's W+ codes of the paired photos, made on first use."""
        codes = self._get("codes")
        if len(codes) != len(self.targets):
            raise ValueError("codes, targets and labels must have one row per pair")
        return codes

    @property
    def perceptual(self) -> metrics.LPIPS:
        """The LPIPS network of the loss, loaded on first use."""
        return self._get("perceptual")

    def __call__(self, generator: TriPlaneGenerator, rng: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(self.targets), (self.batch,), generator=rng, device=rng.device)
        image = (generator.synthesis(self.codes[idx], self.labels[idx], generator=rng)["image"] + 1) / 2
        target = self.targets[idx]
        return self.weight * ((image - target).square().mean() + self.perceptual(image, target).mean())


def make_guide(ctx, prior: dict, tset: TrainingSet, photo_codes: torch.Tensor | Callable[[], torch.Tensor], *,
               nets: LossNets, encoder_art: dict) -> Guide:
    """The guide of a run on ``tset`` (the full prior, its images at G's resolution, with paired or
    estimated labels): its paired rows, their photos' codes (``photo_codes`` (N_photos, 17, w_dim),
    one row per training photo, or a function that makes them when training needs them), the run's
    own labels of those rows and ``nets.perceptual``."""
    if len(tset.images) != len(prior["pair_index"]):
        raise ValueError("the guide needs the full prior (every row and its pair index)")
    paired = prior["pair_index"] >= 0
    codes = photo_codes if callable(photo_codes) else (lambda: photo_codes)
    return Guide(codes=lambda: codes()[prior["pair_index"][paired]], targets=tset.images[paired],
                 labels=tset.labels[paired], perceptual=lambda: nets.perceptual,
                 perceptual_name=nets.names()["perceptual"], batch=ctx.profile.guided.batch,
                 weight=ctx.profile.guided.guide_weight, version=encoder_art["config"])
