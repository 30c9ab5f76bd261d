"""The world's editing pairs, the small editor's training set: identities of their own split, each
rendered as a photo (the real look, with its light and background: what the 3D GAN renders) and
in every style at the same near-frontal camera (the true edit), with the instruction of each style."""
from __future__ import annotations

import dataclasses

import torch

from portraitlib import cameras
from portraitlib.freestyle3d.config import EditorConfig
from portraitlib.provenance import module_version
from portraitlib.world import datasets
from portraitlib.world.config import WorldConfig
from portraitlib.world.identity import sample_latents
from portraitlib.world.renderer import Scene

SPLIT_OFFSET = 9_000
"""Seed offset of the editor's identities: apart from every split of ``world.datasets.SPLIT_SEEDS``
(offsets of at most 3,105), so no training photo, held-out photo or exemplar is among them."""


def instruction(style: str) -> str:
    """The instruction c of a world style, as the training pairs and Alg. 1 phrase it."""
    return f"turn the head into a {style.replace('_', ' ')}"


def editor_draws(n: int, *, seed: int, max_yaw: float) -> tuple[torch.Tensor, torch.Tensor, Scene]:
    """Identities (n, D), near-frontal cameras (n, 3: yaw in +-``max_yaw``, pitch as artists draw)
    and scenes of the editor's split."""
    g = torch.Generator(device="cpu").manual_seed(seed * 10_000 + SPLIT_OFFSET)
    latents = sample_latents(n, generator=g)
    angles = cameras.sample_poses(n, generator=g, kind="artist")
    angles[:, 0] = angles[:, 0].clamp(-max_yaw, max_yaw)
    return latents, angles, Scene.sample(n, generator=g)


def editor_pairs(*, cache, world: WorldConfig, styles: list[str], config: EditorConfig, seed: int,
                 device: torch.device | str = "cpu") -> dict:
    """Cached pairs: ``sources`` (N, 3, R, R) the photos, ``targets`` {style: (N, 3, R, R)} the
    true stylized renders, ``labels`` (N, 25), ``prompts`` {style: instruction}; N = ``pairs_per_style``."""
    n = config.pairs_per_style

    def build() -> dict:
        latents, angles, scene = editor_draws(n, seed=seed, max_yaw=config.max_yaw)
        photos = datasets.render_set(latents, angles, look="real", config=world, scene=scene, device=device,
                                     progress="editor pairs: photos")
        targets = {style: datasets.render_set(latents, angles, look=style, config=world, device=device,
                                              progress=f"editor pairs: {style}").images for style in styles}
        return {"sources": photos.images, "targets": targets, "labels": photos.labels}

    key = {"world": dataclasses.asdict(world), "styles": list(styles), "n": n, "max_yaw": config.max_yaw, "seed": seed,
           "code": module_version(__name__)}
    pairs = cache.get_or_build("freestyle-editor-pairs", key, build)
    return pairs | {"prompts": {style: instruction(style) for style in styles}}
