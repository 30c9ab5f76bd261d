"""``python -m portraitlib.pretrain --model editor``: the world's small InstructPix2Pix released as a
base model, the mini stand-in for ``timbrooks/instruct-pix2pix`` (free-style 3D portraits, seed 001).

It is trained on the world's editing pairs (:mod:`portraitlib.freestyle3d.pairs`: near-frontal
photos, "turn the head into a <style>", the true stylized render) in the two resumable stages of
:mod:`portraitlib.freestyle3d.editor`, then written by diffusers' ``save_pretrained`` (safetensors)
to ``weights/editor-<profile>/``, where ``editor.load_pretrained`` reads it as it reads the real one,
with a model card and a grid of held-out edits. Checkpoints of both stages are in the work folder:
run the command again to resume.
"""
from __future__ import annotations

import dataclasses
import io
import json
import time
from pathlib import Path

import torch
from torchvision.utils import save_image

from portraitlib.cache import ArtifactCache, atomic_write_bytes
from portraitlib.device import seeded_build
from portraitlib.freestyle3d.editor import build_editor, edit, train_autoencoder, train_editor
from portraitlib.freestyle3d.pairs import editor_pairs
from portraitlib.freestyle3d.tokenizer import clip_tokenizer
from portraitlib.metrics import load_lpips
from portraitlib.pretrain.card import made_by, markdown
from portraitlib.quality import face_detection_rate

EVAL_PAIRS = 32
"""Held-out pairs per style on the card: identities of the editor's split of seed + 1."""
EVAL_SEED_OFFSET = 1
"""The held-out pairs' seed offset (their identities are none of the training pairs')."""


def training_set(pairs: dict, styles: list[str]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Every (photo, true edit, instruction) of ``pairs`` for each style, stacked: (N * S, 3, R, R) twice."""
    sources = pairs["sources"].repeat(len(styles), 1, 1, 1)
    targets = torch.cat([pairs["targets"][style] for style in styles])
    prompts = [pairs["prompts"][style] for style in styles for _ in range(len(pairs["sources"]))]
    return sources, targets, prompts


@torch.no_grad()
def held_out_quality(pipe, held: dict, styles: list[str], *, text_guidance: float, image_guidance: float,
                     steps: int, seed: int) -> tuple[dict, torch.Tensor]:
    """Per style, the editor's edits of held-out photos: MediaPipe's face detection rate and LPIPS-VGG
    to the true edit, beside the photo's own LPIPS-VGG to it; and a grid (photo, truth, edit rows)."""
    lpips = load_lpips("vgg")
    quality, rows = {}, []
    for style in styles:
        made = edit(pipe, held["sources"], prompt=held["prompts"][style], steps=steps, text_guidance=text_guidance,
                    image_guidance=image_guidance, generator=torch.Generator(device="cpu").manual_seed(seed)).cpu()
        truth = held["targets"][style]
        quality[style] = {"face_detection": face_detection_rate(made),
                          "lpips_vgg_to_truth": lpips(made, truth).mean().item(),
                          "photo_lpips_vgg_to_truth": lpips(held["sources"], truth).mean().item()}
        rows += [held["sources"][:8], truth[:8], made[:8]]
    buffer = io.BytesIO()
    save_image(torch.cat(rows), buffer, nrow=8, format="png")
    return quality, buffer.getvalue()


def release_editor(*, profile, seed: int, device: torch.device, work: Path, out: Path, command: str,
                   minutes: float | None = None, eval_pairs: int = EVAL_PAIRS) -> dict:
    """Train (resuming from ``work``) the profile's world editor and, once both stages are done,
    measure it on ``eval_pairs`` held-out pairs per style and write the release to ``out``.
    Returns a summary (the card once released)."""
    config, styles, began = profile.freestyle.editor, list(profile.world.styles), time.perf_counter()
    cache = ArtifactCache(profile=profile.name, seed=seed)
    pairs = editor_pairs(cache=cache, world=profile.world, styles=styles, config=config, seed=seed, device=device)
    with seeded_build(seed, "editor"):
        pipe = build_editor(config, resolution=profile.world.image_size, tokenizer=clip_tokenizer(work / "tokenizer"))
    pipe.to(device)
    sources, targets, prompts = training_set(pairs, styles)
    deadline = None if minutes is None else time.perf_counter() + 60 * minutes
    left = lambda: None if deadline is None else max(0.0, (deadline - time.perf_counter()) / 60)  # noqa: E731
    vae_log = train_autoencoder(pipe.vae, torch.cat([sources[:len(pairs["sources"])], targets]), config=config,
                                perceptual=load_lpips("alex").to(device), seed=seed, checkpoint=work / "autoencoder.pt",
                                minutes=left(), progress="editor: autoencoder")
    if not vae_log["done"]:
        return {"work": str(work), "stage": "autoencoder", "step": vae_log["step"], "done": False}
    log = train_editor(pipe, sources, targets, prompts, config=config, seed=seed, checkpoint=work / "unet.pt",
                       minutes=left(), progress="editor: UNet + text")
    if not log["done"]:
        return {"work": str(work), "stage": "unet", "step": log["step"], "done": False}
    free = profile.freestyle
    held = editor_pairs(cache=cache, world=profile.world, styles=styles, seed=seed + EVAL_SEED_OFFSET, device=device,
                        config=dataclasses.replace(config, pairs_per_style=eval_pairs))
    quality, grid = held_out_quality(pipe, held, styles, text_guidance=free.text_guidance,
                                     image_guidance=free.image_guidance, steps=free.inference_steps, seed=seed)
    parameters = {name: sum(p.numel() for p in part.parameters())
                  for name, part in (("unet", pipe.unet), ("autoencoder", pipe.vae), ("text_encoder", pipe.text_encoder))}
    card = {"name": f"editor ({profile.name})",
            "description": "A small InstructPix2Pix (diffusers' AutoencoderKL, UNet2DConditionModel, DDIMScheduler; "
                           "transformers' CLIPTextModel and CLIPTokenizer over CLIP's BPE) trained on the head "
                           "world's editing pairs: a near-frontal photo, 'turn the head into a <style>', the true "
                           "stylized render. The mini stand-in for timbrooks/instruct-pix2pix.",
            **made_by(command=command, seed=seed, device=device),
            "wall_time_s": round(time.perf_counter() - began, 1),
            "train_time_s": round(vae_log["seconds"] + log["seconds"], 1), "steps": log["step"],
            "route": f"autoencoder {vae_log['step']} steps (L1 + LPIPS-alex + 1e-6 KL, latent scale 1/"
                     f"{vae_log['latent_std']:.3f}), then UNet + text encoder {log['step']} steps of Ip2p's objective "
                     f"(instruction, image and both dropped {config.drop:.0%} each) on {len(sources)} pairs",
            "settings": dataclasses.asdict(config), "parameters": parameters,
            "quality": {f"{style}.{k}": v for style, q in quality.items() for k, v in q.items()},
            "quality_n": eval_pairs, "quality_heading": f"{eval_pairs} held-out pairs per style (identities of seed + "
                                                         f"{EVAL_SEED_OFFSET}) at the profile's guidance", "quality_guidance": {"text": free.text_guidance, "image": free.image_guidance,
                                                          "steps": free.inference_steps},
            "curve": [{"stage": "autoencoder", **r} for r in vae_log["curve"]] + [{"stage": "unet", **r}
                                                                                   for r in log["curve"]]}
    pipe.save_pretrained(out, safe_serialization=True)
    atomic_write_bytes(Path(out) / "model_card.json", json.dumps(card, indent=2).encode())
    atomic_write_bytes(Path(out) / "model_card.md", markdown(card).encode())
    atomic_write_bytes(Path(out) / "held_out_grid.png", grid)
    return card
