"""The 3D baselines of AgileGAN3D's Table 1, beside "Ours", as library code.

Both baselines fine-tune the pretrained G on the style's ~20 raw exemplars alone (L_prior's
recipe, labels estimated from the exemplars), G_t^ex. They differ in how a photo x becomes codes:

* **AgileGAN-EG3D**: AgileGAN's z-space (hierarchical VAE) encoder of x, mapped by G_t^ex's own
  mapping network: w = G_t^ex.mapping(E_z(x), p_frontal);
* **Toonify-EG3D**: W+ codes optimised in the pretrained G to reproduce x (L2 + LPIPS from the mean
  w), then rendered by G_t^ex as they are.

"Ours" is the guided G_t with the cycle-trained W+ encoder (``portrait.study_stylizer``). The 2D
AgileGAN turned in latent space, the multi-view baseline of Figs. 8-9, is ``steer2d``.

    methods = baselines.table1_methods(study, "anime", photos, labels, ours=stylizer)
"""
from __future__ import annotations

import torch

from portraitlib import evaluation
from portraitlib.agilegan3d import prior_transfer
from portraitlib.evaluation import AGILEGAN_EG3D, OURS, TOONIFY_EG3D
from portraitlib.pipeline import Study


def exemplar_generator(study: Study, style: str):
    """G_t^ex: the pretrained G transferred on the style's raw exemplars (cached run)."""
    return study.transfer(style, "exemplars")[0]


def toonify_codes(study: Study, photos: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """Toonify-EG3D's codes of ``photos`` (optimised in the pretrained G, cached) and the loss curve."""
    pre = study.pretrained
    return evaluation.toonify_codes(study.ctx, pre.G, pre.artefact, photos, labels, perceptual=study.nets.perceptual)


def table1_methods(study: Study, style: str, photos: torch.Tensor, labels: torch.Tensor, *, ours
                   ) -> list[evaluation.Method]:
    """Table 1's three methods for ``style`` on ``photos`` (N, 3, R, R) at cameras ``labels``
    (N, 25); ``ours`` is the study's stylizer."""
    g_ex = exemplar_generator(study, style)
    agile_z = prior_transfer.zspace_codes(study.pretrained.E_z, photos)
    toonify, _ = toonify_codes(study, photos, labels)
    return [evaluation.Method(OURS, ours.generators[style], ours.codes(photos), "guided G_t, W+ encoder (L_cyc)"),
            evaluation.Method(AGILEGAN_EG3D, g_ex, agile_z(g_ex), "G_t on exemplars, hVAE encoder"),
            evaluation.Method(TOONIFY_EG3D, g_ex, toonify, "G_t on exemplars, optimised W+")]
