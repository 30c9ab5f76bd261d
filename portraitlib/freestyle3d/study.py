"""The free-style 3D study's stages for a notebook: the editor (real, released or trained here) and
Alg. 1's few-shot sets against the editor's own inference, scored against the world's truth.

    pipe, info = study_editor(ctx)                    # T(phi, I, n, c)
    sets = few_shot_sets(pipe, G, z, style="cartoon", config=ctx.profile.freestyle, world=..., seed=...)
"""
from __future__ import annotations

from dataclasses import dataclass
import json
import time

import torch

from portraitlib import cameras, generator3d
from portraitlib.cache import config_key
from portraitlib.freestyle3d import fewshot
from portraitlib.freestyle3d.config import FreeStyleConfig
from portraitlib.freestyle3d.editor import load_pretrained
from portraitlib.freestyle3d.pairs import instruction
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.paths import cache_dir, weights_path
from portraitlib.pretrain.editor import release_editor
from portraitlib.pretrain.world import WorldCodes
from portraitlib.profiles import WorldConfig
from portraitlib.provenance import module_version
from portraitlib.settings import settings_key
from portraitlib.training.warm3d import frontal_labels
from portraitlib.world import datasets

EDITOR_SEED_OFFSET = 31
"""Seed offset of Alg. 1's noises and the editor's own fresh noise in the study."""


def study_editor(ctx):
    """The editor of ``freestyle.editor``: a diffusers folder it names under weights/ (the real Ip2p,
    or the study's release ``editor-mini``), else one trained here by ``pretrain.editor``'s recipe
    into the cache root's ``weights/`` (resumable; keyed on its settings). Returns the pipeline on
    ``ctx.device`` and its model card (empty for the real Ip2p)."""
    profile = ctx.profile
    config = profile.freestyle.editor
    if config.pretrained:
        folder = weights_path(f"{config.pretrained}/model_index.json").parent
    else:
        key = config_key({"editor": settings_key(config), "world": settings_key(profile.world), "seed": ctx.seed,
                          "code": module_version("portraitlib.pretrain.editor")})
        folder = cache_dir() / "weights" / f"editor-{profile.name}-{key}"
        if not (folder / "model_card.json").is_file():
            release_editor(profile=profile, seed=ctx.seed, device=ctx.device, work=folder.with_name(folder.name + "-work"),
                           out=folder, command=f"portraitlib.freestyle3d.study_editor ({ctx.notebook})",
                           eval_pairs=profile.evaluation.n_photos)
    card = folder / "model_card.json"
    return load_pretrained(folder, device=ctx.device), json.loads(card.read_text()) if card.is_file() else {}


def identities(n: int, *, z_dim: int, seed: int) -> torch.Tensor:
    """n codes z ~ N(0, I) (n, z_dim) of the 3D GAN, Alg. 1's identities w (seeded)."""
    return torch.randn(n, z_dim, generator=torch.Generator(device="cpu").manual_seed(seed * 1000 + EDITOR_SEED_OFFSET))


@dataclass
class FewShotSets:
    """Alg. 1's set of one identity beside the editor's own inference, with what scores them (all on the CPU)."""

    angles: torch.Tensor
    """(V, 3) the views (P, Y): yaw, pitch, roll in degrees, V = i * i."""
    renders: torch.Tensor
    """(V, 3, R, R) G(theta, w, v) in [0, 1]."""
    fixed: torch.Tensor
    """(V, 3, R, R) Alg. 1: every view edited from n* of the one noise n."""
    random: torch.Tensor
    """(V, 3, R, R) the editor's own inference: fresh noise per view."""
    depth: torch.Tensor
    """(V, 1, r, r) G's ray distance; ``opacity`` beside it."""
    opacity: torch.Tensor
    truth: torch.Tensor | None
    """(V, 3, R, R) the world's true render of the identity in the style (world codes only), else None."""
    front: torch.Tensor
    """(1, 3, R, R) I_f: the frontal view edited from the same n* (I2T's input)."""
    w: torch.Tensor
    """(num_ws, w_dim) the identity's code."""
    edit_seconds: float
    """Seconds Alg. 1 took for this set: the fixed-noise edits of the views and of I_f (not the
    baseline's fresh-noise edits, G's renders or the truth)."""


@torch.no_grad()
def few_shot_sets(pipe, generator: TriPlaneGenerator, z: torch.Tensor, *, style: str, config: FreeStyleConfig,
                  world: WorldConfig | None, seed: int, angles: torch.Tensor | None = None) -> list[FewShotSets]:
    """For each code of ``z`` (K, z_dim): G's renders at Alg. 1's i x i views (or ``angles`` (V, 3)),
    the fixed-noise set and the random-noise set (same editor, prompt and guidance), the edited
    front view, G's depth and, when G's z is the world code (``world`` given), the true stylized views."""
    angles = fewshot.view_grid(config.views_per_axis) if angles is None else angles
    labels = cameras.labels_from_angles(angles[:, 0], angles[:, 1])
    device = next(generator.parameters()).device
    ws = generator.mapping(z.to(device), frontal_labels(len(z), device))
    res = generator.config.img_resolution
    noise_gen = torch.Generator(device="cpu").manual_seed(seed * 1000 + EDITOR_SEED_OFFSET + 1)
    codes = WorldCodes.from_z(z) if world is not None else None
    out = []
    for k in range(len(z)):
        view = generator3d.render(generator, ws[k:k + 1].expand(len(angles), -1, -1), labels, weights=True)
        renders = view["image"]
        n = torch.randn(fewshot.noise_shape(pipe, res), generator=noise_gen)
        common = {"prompt": instruction(style), "negative_prompt": config.negative_prompt, "steps": config.inference_steps,
                  "text_guidance": config.text_guidance, "image_guidance": config.image_guidance}
        tic = time.perf_counter()
        fixed = fewshot.construct(pipe, renders, noise=n, tau=config.tau, **common)
        edit_seconds = time.perf_counter() - tic
        frontal = generator3d.render(generator, ws[k:k + 1], frontal_labels(1, device))["image"]
        tic = time.perf_counter()
        front = fewshot.construct(pipe, frontal, noise=n, tau=config.tau, **common)
        edit_seconds += time.perf_counter() - tic
        random = fewshot.edit_with_random_noise(pipe, renders, generator=noise_gen, **common)
        truth = None
        if codes is not None:
            truth = datasets.render_set(codes.latents[k:k + 1].expand(len(angles), -1), angles, look=style,
                                        config=world).images
            truth = generator3d.resize(truth, res)
        out.append(FewShotSets(angles=angles, renders=renders.cpu(), fixed=fixed.cpu(), random=random.cpu(),
                               depth=view["image_depth"].cpu(), opacity=view["opacity"].cpu(), truth=truth,
                               front=front.cpu(), w=ws[k].cpu(), edit_seconds=edit_seconds))
    return out


def consistency(sets: FewShotSets, images: torch.Tensor) -> float:
    """Warping error between adjacent views of ``images`` (one of the set's image stacks) through G's depth."""
    i = round(len(sets.angles) ** 0.5)
    return fewshot.set_consistency(images, depth=sets.depth, mask=sets.opacity, angles=sets.angles, i=i)


def view_labels(sets: FewShotSets) -> torch.Tensor:
    """(V, 25) the camera labels of the set's views."""
    return cameras.labels_from_angles(sets.angles[:, 0], sets.angles[:, 1])
