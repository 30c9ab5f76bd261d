"""MMFS's four trainings (Sec. 3), each resumable from a checkpoint and seeded:

    net, log = stage_one(net, S, D_S, config=cfg, seed=0)                       # Eq. (1): E only
    net, log = stage_two(net, D, photos, styled, similarity, config=cfg, seed=0)  # Eqs. (2)-(5)
    M, log = train_mapping(M, net, D, photos, clip, config=cfg, seed=0)         # Eq. (6)
    net_p, log = finetune(net, prompt_ws, photos, clip, similarity, guide=Guide.text(clip, "..."), ...)  # (7), (8)

Images are (N, 3, R, R) in [0, 1] at the interfaces (the networks work in [-1, 1]).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from portraitlib.clip.model import Clip
from portraitlib.device import draw_batch
from portraitlib.distributed import optimiser_step
from portraitlib.losses import nonsaturating_d, nonsaturating_g, r1_penalty
from portraitlib.mmfs.config import MMFSConfig
from portraitlib.mmfs.losses import (SelfSimilarity, clip_tokens, direction_loss, discriminator_distance,
                                     projection_loss, structure_loss, token_basis)
from portraitlib.mmfs.loop import Run
from portraitlib.mmfs.mapping import CLIPMapping
from portraitlib.mmfs.model import MMFS
from portraitlib.nets.discriminators import Discriminator
from portraitlib.nets.stylegan2 import StyleGAN2Generator
from portraitlib.training.gan_core import GANCore

STAGE_BETAS = (0.1, 0.999)
"""Adam's betas in Stages I and II (the paper)."""
GUIDED_BETAS = (0.9, 0.999)
"""Adam's betas of the CLIP mapping and the guided fine-tunings (the paper)."""


def _unit(images: torch.Tensor) -> torch.Tensor:
    return ((images + 1) / 2).clamp(0, 1)


def stage_one(net: MMFS, source: StyleGAN2Generator, discriminator: Discriminator, *, config: MMFSConfig, seed: int,
              checkpoint: Path | None = None, progress: str | None = None) -> tuple[MMFS, dict]:
    """Eq. (1): I_ref = S(z), I_rec = D(E(I_ref), w(z)); E learns L1(I_rec, I_ref) + lambda_perc
    sum_l L1(D^l(I_rec), D^l(I_ref)) with S's discriminator; D, the mapping and S stay frozen. The
    L1 of E's output to S's features is logged (``features``), not trained on: E meets them only
    through the image, as in the paper. Returns the EMA net and the curves."""
    net.requires_grad_(False)
    net.encoder.requires_grad_(True)
    discriminator.requires_grad_(False)
    run = Run(net, net.encoder.parameters(), lr=config.stage1_lr, betas=STAGE_BETAS, batch=config.batch,
              ema_half_life=config.ema_half_life, seed=seed, checkpoint=checkpoint)
    for step in run.steps(config.stage1_steps, progress=progress):
        z = torch.randn(config.batch, source.z_dim, generator=run.rng, device=run.rng.device)
        with torch.no_grad():
            ws = source.mapping(z, None)
            target_x, target_img = source.synthesis.features(ws, until=net.feature_resolution)
            reference = net.decoder(target_x, target_img, ws[:, net.first_w:])
        x, img = net.encoder(reference)
        rec = net.decoder(x, img, ws[:, net.first_w:])
        l1 = F.l1_loss(rec, reference)
        perceptual = discriminator_distance(discriminator, rec, reference)
        with torch.no_grad():
            features = F.l1_loss(x, target_x) + F.l1_loss(img, target_img)
        run.update(step, l1 + config.perceptual_weight * perceptual, l1=l1, perceptual=perceptual, features=features)
    return run.finish()


def stage_two(net: MMFS, discriminator: Discriminator, photos: torch.Tensor, styled: torch.Tensor,
              similarity: SelfSimilarity, *, config: MMFSConfig, seed: int,
              evaluate: Callable[[MMFS], float | dict] | None = None, checkpoint: Path | None = None,
              progress: str | None = None) -> tuple[MMFS, dict]:
    """Eqs. (2)-(5): E, D and the mapping learn L_adv (non-saturating, D against ``styled``, the
    style renders) + lambda_st L_st between D(E(I_r), w(z)) and the photo I_r, z ~ N(0, I); lazy R1
    on D. ``evaluate`` (lower is better) picks the EMA weights returned."""
    net.requires_grad_(True)
    discriminator.requires_grad_(True)
    core = GANCore(net, discriminator, seed=seed, lr=config.stage1_lr, r1_every=16, batch=config.batch,
                   ema_half_life=config.ema_half_life, log_keys=("d_loss", "g_loss", "structure", "r1"),
                   evaluate=evaluate, eval_every=config.eval_every, checkpoint=checkpoint, betas=STAGE_BETAS)
    rng = core.rng

    def fakes() -> tuple[torch.Tensor, torch.Tensor]:
        sources = draw_batch(photos, config.batch, rng)[0]
        z = torch.randn(config.batch, net.z_dim, generator=rng, device=rng.device)
        return net(sources * 2 - 1, net.styles(z), noise_mode="random", generator=rng), sources

    for step in core.steps(config.stage2_steps, progress=progress):
        real = draw_batch(styled, config.batch, rng)[0] * 2 - 1
        with torch.no_grad():
            fake = fakes()[0]
        d_loss = nonsaturating_d(discriminator(real), discriminator(fake))
        r1 = core.zero()
        if step % 16 == 0:
            real_r = real.detach().requires_grad_(True)
            r1 = r1_penalty(discriminator(real_r), [real_r])
            d_loss = d_loss + r1 * (config.r1_gamma / 2) * 16
        optimiser_step(core.opt_d, d_loss)

        fake, sources = fakes()
        structure = structure_loss(similarity, _unit(fake), sources)
        g_loss = nonsaturating_g(discriminator(fake))
        optimiser_step(core.opt_g, g_loss + config.structure_weight * structure)
        core.end_step(step, d_loss=d_loss, g_loss=g_loss, structure=structure, r1=r1)
    return core.finish()


def train_mapping(mapping: CLIPMapping, net: MMFS, discriminator: Discriminator, photos: torch.Tensor, clip: Clip, *,
                  config: MMFSConfig, seed: int, checkpoint: Path | None = None, progress: str | None = None
                  ) -> tuple[CLIPMapping, dict]:
    """Eq. (6): I_ref = D(E(I_r), w(z)), I_rec = D(E(I_r), M(F_CLIP(I_ref) + e_pos)); M learns
    Eq. (1)'s loss between them, with Stage II's discriminator. Everything but M is frozen."""
    for module in (net, discriminator, clip):
        module.requires_grad_(False)
    mapping.requires_grad_(True)
    run = Run(mapping, mapping.parameters(), lr=config.mapping_lr, betas=GUIDED_BETAS, batch=config.batch,
              ema_half_life=config.ema_half_life, seed=seed, checkpoint=checkpoint)
    for step in run.steps(config.mapping_steps, progress=progress):
        sources = draw_batch(photos, config.batch, run.rng)[0] * 2 - 1
        z = torch.randn(config.batch, net.z_dim, generator=run.rng, device=run.rng.device)
        with torch.no_grad():
            reference = net(sources, net.styles(z))
            embedding = clip.encode_images(_unit(reference))
        rec = net(sources, mapping(embedding))
        l1 = F.l1_loss(rec, reference)
        perceptual = discriminator_distance(discriminator, rec, reference)
        run.update(step, l1 + config.perceptual_weight * perceptual, l1=l1, perceptual=perceptual)
    return run.finish()


@dataclass(frozen=True)
class Guide:
    """What a guided fine-tuning aims at: d_CLIP(p), the prompt's CLIP direction from its anchor,
    and for an image prompt the basis U of its tokens (Eq. 8)."""

    embedding: torch.Tensor
    """(D,) F_CLIP(p): the input of the mapping."""
    direction: torch.Tensor
    """(D,) F_CLIP(p) minus the anchor's embedding."""
    basis: torch.Tensor | None = None
    """(C, k) U of the reference's tokens (image prompts), else None (Eq. 7 alone)."""

    @classmethod
    @torch.no_grad()
    def text(cls, clip: Clip, prompt: str, *, anchor: str) -> "Guide":
        """Zero-shot (Eq. 7): the direction from the anchor text (e.g. "a photo of a person")."""
        target, source = clip.encode_texts([prompt, anchor])
        return cls(embedding=target, direction=target - source)

    @classmethod
    @torch.no_grad()
    def image(cls, clip: Clip, reference: torch.Tensor, photos: torch.Tensor, *, layer: int) -> "Guide":
        """One-shot (Eq. 8): reference (1, 3, R, R) in [0, 1]; its direction from the mean embedding
        of ``photos`` (the source domain: the paper names no image anchor) and its tokens' basis."""
        target = clip.encode_images(reference)[0]
        anchor = clip.encode_images(photos).mean(0)
        return cls(embedding=target, direction=target - anchor,
                   basis=token_basis(clip_tokens(clip, reference, layer=layer)[0]))


def finetune(net: MMFS, mapping: CLIPMapping, photos: torch.Tensor, clip: Clip, similarity: SelfSimilarity, *,
             guide: Guide, config: MMFSConfig, seed: int, progress: str | None = None) -> tuple[MMFS, torch.Tensor, dict]:
    """Eqs. (7)-(8): a copy of ``net`` whose decoder alone learns ||S^l(I_s) - S^l(I_r)||_F +
    lambda_c (1 - sim(d_CLIP(I_s), d_CLIP(p))) (+ lambda_proj ||U U^T T(I_s) - T(I_s)||_1 with an
    image prompt), I_s = D(E(I_r), c_w+), c_w+ = M(F_CLIP(p) + e_pos). Returns the EMA copy, c_w+
    (1, num_ws, w_dim) and the curves."""
    net = copy.deepcopy(net).requires_grad_(False)
    net.decoder.requires_grad_(True)
    for module in (mapping, clip, similarity):
        module.requires_grad_(False)
    with torch.no_grad():
        codes = mapping(guide.embedding[None])
    run = Run(net, net.decoder.parameters(), lr=config.mapping_lr, betas=GUIDED_BETAS, batch=config.batch,
              ema_half_life=config.finetune_ema_half_life, seed=seed)
    for step in run.steps(config.finetune_steps, progress=progress):
        sources = draw_batch(photos, config.batch, run.rng)[0]
        styled = _unit(net(sources * 2 - 1, codes.expand(len(sources), -1, -1)))
        structure = structure_loss(similarity, styled, sources)
        direction = direction_loss(clip, styled, sources, guide.direction)
        projection = (projection_loss(clip_tokens(clip, styled, layer=config.token_layer), guide.basis)
                      if guide.basis is not None else torch.zeros((), device=styled.device))
        loss = structure + config.clip_weight * direction + config.projection_weight * projection
        run.update(step, loss, structure=structure, direction=direction, projection=projection)
    ema, log = run.finish()
    return ema, codes, log
