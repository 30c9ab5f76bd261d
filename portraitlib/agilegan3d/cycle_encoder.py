"""Inverting photos into the 3D generator (AgileGAN3D Sec. 3.2; notebook 04): the 17-code W+ encoder
E_theta with and without the multi-view cycle-consistency loss, as cached artefacts, and how well
they invert. With x^ = G_phi(E_theta(x)) and w = G_phi.mapping(z, p_frontal), z ~ N(0, I):

    L_cyc = sum_{i=1..N} L_2(w+, E_theta(G_phi(w, p_i)))                (2)
    L_rec = L_2(x, x^) + L_lpips(x, x^) + L_arc(x, x^)                    (3)
    L_reg = ||div(E_theta(x))||_2                                         (4)

(the training loop is ``portraitlib.training.encoder3d``; L_arc uses the profile's identity net).

    E, art = cycle_encoder.wplus_encoder(ctx, data, nets, G, pretrained_art, cycle=True)
    scores = cycle_encoder.inversion_scores(cycle_encoder.encode(E, photos), G, photos, labels, nets)
"""
from __future__ import annotations

import dataclasses
import time

import torch

from portraitlib.device import device_of, seeded_generator
from portraitlib.evaluation import inversion_measures
from portraitlib.provenance import module_version
from portraitlib.generator3d import render
from portraitlib.nets.encoders import WPlusEncoder
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.study_data import LossNets, StudyImages
from portraitlib.training.encoder3d import code_spread, cycle_loss, mean_w_3d, train_wplus_3d
from portraitlib.training.warm3d import frontal_labels


def make_encoder(generator: TriPlaneGenerator) -> WPlusEncoder:
    """A pSp-style encoder (three pyramid levels, a head per code) into G's 17-code W+, as offsets
    from G's mean w."""
    cfg = generator.config
    return WPlusEncoder(img_resolution=cfg.img_resolution, num_ws=generator.num_ws_plus, w_dim=cfg.w_dim,
                        w_avg=mean_w_3d(generator))


def wplus_encoder(ctx, data: StudyImages, nets: LossNets, generator: TriPlaneGenerator, pretrained_art: dict, *,
                  cycle: bool, progress: bool = True) -> tuple[WPlusEncoder, dict]:
    """The W+ encoder trained on the real training photos with G frozen (``encoder`` settings of the
    profile); ``cycle=False`` is the ablation without L_cyc. Cached; returns it (frozen) and its
    artefact (log, seconds)."""
    settings = ctx.profile.encoder if cycle else dataclasses.replace(ctx.profile.encoder, cycle_weight=0.0)
    key = {"pretrained": pretrained_art["config"], "settings": dataclasses.asdict(settings), "nets": nets.names(),
           "code": module_version(__name__)}
    stage = f"eg3d-encoder-wplus-{'cycle' if cycle else 'nocycle'}"

    def build() -> dict:
        enc = ctx.build(stage, lambda: make_encoder(generator))
        start = time.perf_counter()
        enc, log = train_wplus_3d(enc, generator, data.real_train, data.train_labels, settings=settings, seed=ctx.seed,
                                  perceptual=nets.perceptual, identity=nets.identity,
                                  checkpoint=ctx.cache.resume_path(stage, key),
                                  progress=f"W+ encoder ({'with' if cycle else 'without'} L_cyc)" if progress else None)
        return {"state": enc.state_dict(), "log": log, "seconds": time.perf_counter() - start}

    art = ctx.cache.get_or_build(stage, key, build, stages=(stage,))
    enc = ctx.build(stage, lambda: make_encoder(generator))
    enc.load_state_dict(art["state"])
    return enc.eval().requires_grad_(False), art


@torch.no_grad()
def encode(encoder: WPlusEncoder, images: torch.Tensor, *, batch: int = 64) -> torch.Tensor:
    """W+ codes (N, 17, w_dim) of photos (N, 3, R, R) in [0, 1], on the encoder's device."""
    encoder.eval()
    device = device_of(encoder)
    return torch.cat([encoder(images[i:i + batch].to(device)) for i in range(0, len(images), batch)])


def inversion_scores(codes: torch.Tensor, generator: TriPlaneGenerator, photos: torch.Tensor, labels: torch.Tensor,
                     nets: LossNets) -> dict:
    """Table 2's measures (``evaluation.inversion_measures``) of G(codes) at the photos' cameras
    against the photos, each the mean over the photos; plus ``renders``. ``codes``: W+
    (N, 17, w_dim) or mapping codes (N, 14, w_dim)."""
    renders = render(generator, codes, labels)["image"]
    return {name: m["mean"] for name, m in inversion_measures(renders, photos, nets).items()} | {"renders": renders}


@torch.no_grad()
def cycle_error(encoder: WPlusEncoder, generator: TriPlaneGenerator, labels: torch.Tensor, *, n: int = 64,
                views: int = 2, seed: int = 0) -> float:
    """Eq. (2) on fresh prior samples: mean squared error between the codes of G's renders (at
    ``views`` cameras drawn from ``labels``) and the codes that made them. Lower: E stays in W."""
    encoder.eval()
    return cycle_loss(encoder, generator, labels, n=n, views=views,
                      generator_rng=seeded_generator(seed, device_of(generator))).item()


@torch.no_grad()
def distance_from_w(codes: torch.Tensor, generator: TriPlaneGenerator, *, n: int = 1024, seed: int = 0) -> dict:
    """How far W+ codes (N, 17, w_dim) sit from G's W: their per-photo code spread (Eq. 4) and the
    mean distance of each code to its nearest of n mapped prior samples, beside the same distance
    for other prior samples (the W-internal reference)."""
    device = device_of(generator)
    z = torch.randn(2 * n, generator.config.z_dim, generator=seeded_generator(seed, device), device=device)
    w = generator.mapping(z, frontal_labels(2 * n, device))[:, 0]
    bank, fresh = w[:n], w[n:]
    nearest = torch.cdist(codes.reshape(-1, codes.shape[-1]), bank).min(1).values.mean().item()
    reference = torch.cdist(fresh, bank).min(1).values.mean().item()
    return {"code_spread": code_spread(codes).item(), "nearest_w": nearest, "nearest_w_reference": reference}
