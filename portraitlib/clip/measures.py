"""What a CLIP knows of the world, checked against the truth on held-out identities.

The world renders the same identity at the same camera in every look, and the same identity with
only one factor changed, so every retrieval has a controlled answer:

- ``look_top1``: text-to-image top-1 among the six looks of one identity and camera, the query
  "a cartoon of a person" (a training phrase; the renders are new); ``confusion`` (rows: true
  look, columns: the look prompt an image matches best);
- ``attribute_top1``: the same among the values of one attribute (hair colour: the six palette
  colours, not in monochrome looks; glasses: on or off, queried for on only; facing: yaw +30, 0,
  -30), other factors fixed and no hat, query e.g. "a person with red hair";
- ``zero_shot_top1``: ``look_top1`` with the held-out look words ("a toon of a person"), which no
  training caption contains: a world CLIP has no language beyond its captions, so chance (1/6)
  is the honest expectation, where a web-trained CLIP transfers;
- ``score_own`` / ``score_other_looks`` / ``score_gap``: the CLIP score (cosine, as seed 001
  reports it) of each render with its own full caption, with the captions of the same identity
  in the other looks, and the difference.

    held = held_out_set(cache=ctx.cache, world=cfg.world, config=cfg.clip, seed=ctx.seed)
    measures = evaluate(clip, held)          # a dict of plain values, recorded under clip.*
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from portraitlib import cameras
from portraitlib.clip.model import Clip
from portraitlib.profiles import ClipConfig, WorldConfig
from portraitlib.world.captions import (ATTRIBUTE_QUERIES, ATTRIBUTE_VALUES, HELD_OUT_LOOK_WORDS, Attribute,
                                        Description, Facing, attribute_prompt, describe, full_caption, look_prompt)
from portraitlib.world.datasets import cached_views
from portraitlib.world.identity import sample_latents, with_accessory, with_hair_colour
from portraitlib.world.styles import get_style

HELD_OUT_OFFSET = 8_000
"""Seed offset of the held-out identities (seed * 10000 + 8000; the data sets use offsets below 8000)."""
_FACING_YAWS = {Facing.LEFT: 30.0, Facing.FRONT: 0.0, Facing.RIGHT: -30.0}


@dataclass(frozen=True)
class HeldOut:
    """Held-out renders of the measures (new identities; the real look in studio light)."""

    looks: tuple[str, ...]
    """``real`` and the styles, in the order of the first axis of ``images``."""
    images: torch.Tensor
    """(L, N, 3, R, R): identity n at its FFHQ-like camera in look l."""
    descriptions: list[list[Description]]
    """[L][N]: the truth of each of ``images``."""
    attributes: dict[Attribute, dict[str, torch.Tensor]]
    """attribute -> look -> (V, M, 3, R, R): identity m with the v-th of ``ATTRIBUTE_VALUES``
    (hair colour only in looks that show colour)."""


def _variants(attribute: Attribute, latents: torch.Tensor, angles: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents and angles (V * M, ...) of M identities with each value of ``attribute``, hat off."""
    rows_z, rows_a = [], []
    for value in ATTRIBUTE_VALUES[attribute]:
        z, a = with_accessory(latents, "hat", False), angles.clone()
        if attribute is Attribute.HAIR_COLOUR:
            z = with_hair_colour(z, ATTRIBUTE_VALUES[attribute].index(value))
        elif attribute is Attribute.GLASSES:
            z = with_accessory(z, "glasses", value)
        else:
            a[:, :2] = torch.tensor([_FACING_YAWS[value], 0.0])
        rows_z.append(z)
        rows_a.append(a)
    return torch.cat(rows_z), torch.cat(rows_a)


def held_out_set(*, cache, world: WorldConfig, config: ClipConfig, seed: int) -> HeldOut:
    """The held-out renders of ``config.n_test`` and ``config.n_attribute`` new identities in every
    look of ``world``, rendered through the artefact cache (``datasets.cached_views``)."""
    looks = ("real", *world.styles)
    g = torch.Generator(device="cpu").manual_seed(seed * 10_000 + HELD_OUT_OFFSET)
    latents = sample_latents(config.n_test, generator=g)
    angles = cameras.sample_poses(config.n_test, generator=g, kind="ffhq")
    base = sample_latents(config.n_attribute, generator=g)
    base_angles = cameras.sample_poses(config.n_attribute, generator=g, kind="ffhq")
    images = torch.stack([cached_views(cache=cache, latents=latents, angles=angles, look=look, config=world).images
                          for look in looks])
    attributes: dict[Attribute, dict[str, torch.Tensor]] = {}
    for attribute in Attribute:
        z, a = _variants(attribute, base, base_angles)
        shown = [look for look in looks if attribute is not Attribute.HAIR_COLOUR or get_style(look).monochrome is None]
        attributes[attribute] = {look: cached_views(cache=cache, latents=z, angles=a, look=look, config=world)
                                 .images.reshape(-1, config.n_attribute, *images.shape[2:]) for look in shown}
    return HeldOut(looks=looks, images=images, descriptions=[describe(latents, angles, look) for look in looks],
                   attributes=attributes)


@torch.no_grad()
def embed_images(clip: Clip, images: torch.Tensor, *, batch: int = 256) -> torch.Tensor:
    """Unit embeddings (..., D) of images (..., 3, R, R), on the CPU."""
    flat = images.reshape(-1, *images.shape[-3:])
    device = clip.mean.device
    out = torch.cat([clip.encode_images(flat[i:i + batch].to(device)).cpu() for i in range(0, len(flat), batch)])
    return out.reshape(*images.shape[:-3], -1)


@torch.no_grad()
def embed_texts(clip: Clip, texts: list[str], *, batch: int = 256) -> torch.Tensor:
    """Unit embeddings (N, D) of N strings, on the CPU."""
    return torch.cat([clip.encode_texts(texts[i:i + batch]).cpu() for i in range(0, len(texts), batch)])


def retrieval(queries: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Text-to-image top-1 hits (Q, M): query q (Q, D) against the V >= Q candidates (V, M, D) of
    each of M groups; a hit when the best candidate of group m is the q-th."""
    sims = torch.einsum("qd,vmd->qvm", queries, candidates)
    return sims.argmax(1) == torch.arange(len(queries))[:, None]


def evaluate(clip: Clip, held: HeldOut) -> dict:
    """The measures of the module docstring, as plain values (with ``name``/``weights`` of the CLIP
    and the ``chance`` level of each retrieval)."""
    looks = list(held.looks)
    images = embed_images(clip, held.images)  # (L, N, D)
    prompts = embed_texts(clip, [look_prompt(look) for look in looks])
    held_out_prompts = embed_texts(clip, [look_prompt(look, held_out=True) for look in looks])
    hits, zero_shot = retrieval(prompts, images), retrieval(held_out_prompts, images)
    best = torch.einsum("lnd,qd->lnq", images, prompts).argmax(-1)  # (L, N) look prompt each image matches best
    confusion = torch.stack([torch.bincount(best[i], minlength=len(looks)) for i in range(len(looks))])
    captions = embed_texts(clip, [full_caption(d) for row in held.descriptions for d in row]).reshape(images.shape)
    scores = torch.einsum("lnd,knd->lkn", images, captions)  # image of look l with the caption of look k
    mine = torch.eye(len(looks), dtype=torch.bool)
    own, other = scores[mine].mean(), scores[~mine].mean()
    attribute_top1, per_look = {}, {}
    for attribute, renders in held.attributes.items():
        queries = embed_texts(clip, [attribute_prompt(attribute, v) for v in ATTRIBUTE_QUERIES[attribute]])
        per_look[attribute.value] = {look: retrieval(queries, embed_images(clip, x)).float().mean().item()
                                     for look, x in renders.items()}
        attribute_top1[attribute.value] = sum(per_look[attribute.value].values()) / len(renders)
    return {
        "name": clip.name, "weights": clip.weights, "looks": looks,
        "n_test": images.shape[1], "n_attribute": next(iter(held.attributes[Attribute.GLASSES].values())).shape[1],
        "look_top1": hits.float().mean().item(),
        "look_top1_per_look": dict(zip(looks, hits.float().mean(1).tolist())),
        "look_classification": (best == torch.arange(len(looks))[:, None]).float().mean().item(),
        "confusion": confusion.tolist(),
        "attribute_top1": attribute_top1, "attribute_top1_per_look": per_look,
        "zero_shot_top1": zero_shot.float().mean().item(),
        "zero_shot_top1_per_look": dict(zip(looks, zero_shot.float().mean(1).tolist())),
        "zero_shot_words": {look: HELD_OUT_LOOK_WORDS[look] for look in looks},
        "score_own": own.item(), "score_other_looks": other.item(), "score_gap": (own - other).item(),
        "chance": {"look": 1 / len(looks), **{a.value: 1 / len(ATTRIBUTE_VALUES[a]) for a in Attribute}},
    }
