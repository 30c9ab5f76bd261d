"""The world CLIP as a released base model: the one :func:`training.study_world_clip` trains, written
to ``weights/world_clip-<profile>/`` by ``python -m portraitlib.pretrain --model world_clip`` and
loaded like real CLIP weights, so a study reads it instead of training it (about 20 min of the
mini study's 2 cores).

    clip, info = load_released(weights_path("world_clip-mini/world_clip.safetensors"), world=..., config=...)

The file holds the open_clip model's tensors (safetensors: no code runs on load) and, in its
metadata, the world and CLIP settings it was trained with; a profile whose settings differ is
refused with the differing fields named. ``info`` is the training record of its model card.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from portraitlib.clip.model import Clip, world_clip
from portraitlib.device import seeded_build
from portraitlib.pretrain.card import Kind, load_state, read_card, read_metadata
from portraitlib.profiles import ClipConfig, WorldConfig
from portraitlib.settings import settings_key

INFO_KEYS = ("looks", "curve", "seconds", "n_images", "example_captions")
"""The training record a world CLIP carries (``study_world_clip``'s info), kept on its model card."""


def release_config(*, world: WorldConfig, config: ClipConfig) -> dict:
    """What a world CLIP release is made of: the world it saw and the CLIP settings it was trained with."""
    return json.loads(json.dumps({"world": dataclasses.asdict(world), "clip": settings_key(config)}))


def load_released(path: Path, *, world: WorldConfig, config: ClipConfig,
                  device: torch.device | str = "cpu") -> tuple[Clip, dict]:
    """The world CLIP of a release file (eval, on ``device``) and its training record; a file made
    with other world or CLIP settings than the profile's is refused, naming the fields."""
    recorded, wanted = read_metadata(path, Kind.WORLD_CLIP), release_config(world=world, config=config)
    changed = sorted(f"{part}.{k}" for part in wanted for k in set(wanted[part]) | set(recorded.get(part, {}))
                     if json.dumps(wanted[part].get(k)) != json.dumps(recorded.get(part, {}).get(k)))
    if changed:
        raise ValueError(f"{path} was trained with other settings than this profile's (differs in {changed}): "
                         "release it again with `python -m portraitlib.pretrain --model world_clip`, or drop "
                         "clip.source_checkpoint to train the world CLIP in the study")
    label = f"released {Path(path).parent.name}/{Path(path).name}"
    with seeded_build(0, "pretrain-load"):
        clip = world_clip(config, weights=label)
    clip.model.load_state_dict(load_state(path))
    card = read_card(path)
    return clip.to(device).eval(), {k: card[k] for k in INFO_KEYS if k in card}

