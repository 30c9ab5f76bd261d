"""``python -m portraitlib.pretrain --model world_clip``: the world CLIP released as a base model
(:mod:`portraitlib.clip.release` loads it)."""
from __future__ import annotations

from pathlib import Path

import torch

from portraitlib.cache import ArtifactCache
from portraitlib.clip.measures import evaluate, held_out_set
from portraitlib.clip.release import release_config
from portraitlib.clip.training import study_world_clip
from portraitlib.pretrain.card import Kind, made_by, write_release


def release_world_clip(*, profile, seed: int, device: torch.device, out: Path, command: str) -> dict:
    """Train (or take from the artefact cache: the study's own run of the same settings) the
    profile's world CLIP, measure it on the held-out renders and write the release to ``out``:
    ``world_clip.safetensors`` and its model card. Returns the card."""
    cache = ArtifactCache(profile=profile.name, seed=seed)
    clip, info = study_world_clip(cache=cache, world=profile.world, config=profile.clip, seed=seed, device=device)
    measures = evaluate(clip, held_out_set(cache=cache, world=profile.world, config=profile.clip, seed=seed))
    quality = {"look_top1": measures["look_top1"], "zero_shot_top1": measures["zero_shot_top1"],
               "score_gap": measures["score_gap"],
               **{f"{k}_top1": v for k, v in measures["attribute_top1"].items()}}
    card = {"name": f"{Kind.WORLD_CLIP.value} ({profile.name})",
            "description": "A small CLIP of open_clip's own classes trained contrastively on the head world's "
                           "captioned renders of every look (captions exact to the world's factors; glasses and "
                           "hair counterfactuals in each batch when the profile asks). The study's CLIP scores "
                           "on the world; real CLIP weights take its place at paper scale.",
            **made_by(command=command, seed=seed, device=device), "train_time_s": round(info["seconds"], 1),
            "route": f"{profile.clip.epochs} epochs of the contrastive loss over {info['n_images']} renders",
            "config": release_config(world=profile.world, config=profile.clip), "quality": quality,
            "quality_heading": f"{profile.clip.n_test} held-out identities in every look: text-to-image top-1, "
                               "zero-shot look words, own-caption score gap; attributes on "
                               f"{profile.clip.n_attribute} more", "quality_n": profile.clip.n_test, "measures": {"name": measures["name"]}, **info}
    write_release(out, net=clip.model, kind=Kind.WORLD_CLIP, config=card["config"], card=card)
    return card
