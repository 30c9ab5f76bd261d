"""Pretrain the head world's base models: G_world (3D, notebook 02's G), S_world (2D, notebook 01's S),
the world CLIP (notebook 00's, the CLIP of the CLIP scores) and the world's InstructPix2Pix (notebook 09's editor).

    python -m portraitlib.pretrain --profile mini --model G_world [--device auto] [--minutes M]
    python -m portraitlib.pretrain --profile mini --model S_world
    python -m portraitlib.pretrain --profile mini --model world_clip
    python -m portraitlib.pretrain --profile mini --model editor

The rendered training photos and the held-out set are made once, shared by both models, in the
cache root's ``weights/world-pool-<profile>.pt`` and ``world-held-out-<profile>.pt``. Training files
go to ``weights/<model>-<profile>/`` there (or ``--work``): ``checkpoint.pt``, ``critic-<steps>.pt`` (D
against the generator after that many steps) and ``curve.json``; all atomic and resumable: run the same
command again to continue, or raise the profile's steps and run it to train further.
When the schedule ends, the release - ``<model>.safetensors``, ``model_card.{json,md}`` and
``held_out_grid.png`` (rows of true held-out photos, each over the model's images of them) - is
written to the repository's ``weights/<model>-<profile>/`` (or ``--out``), where the profiles
find it. ``--minutes`` bounds the training time of one invocation.
The world CLIP trains through the study's artefact cache instead (no pool, one atomic artefact): a
cache where a study already trained it at the same settings releases it at once. The editor
(``pretrain.editor``) renders its own pairs and is released as a diffusers folder.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from portraitlib.agilegan3d.style_prior import gan_config
from portraitlib.cache import atomic_torch_save, atomic_write_bytes, safe_torch_load
from portraitlib.generator3d import discriminator_config
from portraitlib.device import DEVICE_CHOICES, configure_backends, pick_device, seeded_build
from portraitlib.identity import load_identity_net
from portraitlib.metrics import load_lpips
from portraitlib.nets import configs
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.paths import cache_dir, released_weights_dir
from portraitlib.pretrain.card import Kind, held_out_grid, made_by, write_release
from portraitlib.pretrain.critic import warm_critic_2d, warm_critic_3d
from portraitlib.pretrain.image2d import SETTINGS_2D, held_out_images_2d, pretrain_2d
from portraitlib.pretrain.editor import release_editor
from portraitlib.pretrain.world_clip import release_world_clip
from portraitlib.pretrain.train import (SETTINGS, Measures, cooled, held_out_renders, make_eval_set, make_pool, pretrain,
                                        route)
from portraitlib.pretrain.world import IMAGE_CODE_DIM
from portraitlib.profile_loading import load_profile
from portraitlib.training.gan2d import build_2d

EVAL_IDENTITIES = 32
"""Held-out identities measured along the way and on the card."""
DESCRIPTION = {
    Kind.G_WORLD: "EG3D tri-plane generator pretrained on the synthetic head world by depth-guided rendered "
                  "regression. z is the world code (identity latent, then the photo's light and background "
                  "quantiles; no free noise), so every z ~ N(0, I) is a head. Beside the official synthesis "
                  "network, a direct linear path from w to the planes (TriPlaneConfig.plane_head).",
    Kind.S_WORLD: "2D StyleGAN2 pretrained on the synthetic head world's photos by regression (L1 + LPIPS-alex). "
                  "z is the world code, then the camera's yaw and pitch quantiles, so every z ~ N(0, I) is a "
                  "photo of a head. Beside the official synthesis network, a direct linear path from w to the "
                  "16x16 features (GAN2DConfig.direct_resolution).",
}


def _cached(path: Path, build, *, rows: int) -> dict:
    """The data set saved at ``path``, built and saved atomically on first use."""
    if path.exists():
        value = safe_torch_load(path)
        if len(value["z"]) != rows:
            raise ValueError(f"{path} holds {len(value['z'])} photos, not {rows}: another profile's or setting's "
                             "data; use another --work or delete it")
        return value
    value = build()
    atomic_torch_save(value, path)
    return value


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m portraitlib.pretrain", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="mini", choices=sorted(SETTINGS))
    parser.add_argument("--model", default=Kind.G_WORLD.value, choices=[k.value for k in Kind])
    parser.add_argument("--device", default="auto", help=f"{', '.join(DEVICE_CHOICES)} or cuda:N")
    parser.add_argument("--minutes", type=float, default=None, help="training time budget of this invocation")
    parser.add_argument("--work", type=Path, default=None, help="training folder (pool, checkpoint, curve)")
    parser.add_argument("--out", type=Path, default=None, help="release folder (weights and model card)")
    parser.add_argument("--seed", type=int, default=None, help="default: the profile's seed")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    kind = Kind(args.model)
    profile = load_profile(args.profile)
    seed = profile.seed if args.seed is None else args.seed
    command = ["python", "-m", "portraitlib.pretrain", *(sys.argv[1:] if argv is None else argv)]
    if kind is Kind.WORLD_CLIP:  # trained through the artefact cache, as the study would train it
        device = pick_device(args.device)
        out = args.out or released_weights_dir() / f"{kind.value}-{args.profile}"
        card = release_world_clip(profile=profile, seed=seed, device=device, out=out, command=shlex.join(command))
        print(json.dumps({"out": str(out), "quality": card["quality"]}, indent=1))
        return card
    if kind is Kind.EDITOR:  # a diffusers folder; both stages resume from the work folder
        device = pick_device(args.device)
        work = args.work or cache_dir() / "weights" / f"{kind.value}-{args.profile}"
        out = args.out or released_weights_dir() / f"{kind.value}-{args.profile}"
        summary = release_editor(profile=profile, seed=seed, device=device, work=work, out=out,
                                 command=shlex.join(command), minutes=args.minutes)
        print(json.dumps({k: summary[k] for k in ("quality", "done", "stage", "step") if k in summary}, indent=1))
        return summary
    settings, cfg = SETTINGS[args.profile], configs.named(profile.eg3d.generator)
    work = args.work or cache_dir() / "weights" / f"{kind.value}-{args.profile}"
    work.mkdir(parents=True, exist_ok=True)
    device = pick_device(args.device)
    configure_backends(device)
    began = time.perf_counter()

    world = {"z_dim": cfg.z_dim, "config": profile.world, "resolution": cfg.img_resolution, "seed": seed}
    pool = _cached(cache_dir() / "weights" / f"world-pool-{args.profile}.pt",
                   lambda: make_pool(n=settings.pool, supersample=settings.pool_supersample, progress="world photos",
                                     **world), rows=settings.pool)
    held_out = _cached(cache_dir() / "weights" / f"world-held-out-{args.profile}.pt",
                       lambda: make_eval_set(n=EVAL_IDENTITIES, **world), rows=EVAL_IDENTITIES)
    judge = Measures(load_lpips("vgg").to(device), load_identity_net().to(device))
    train = {"pool": pool, "held_out": held_out, "seed": seed, "checkpoint": work / "checkpoint.pt", "judge": judge,
             "perceptual": load_lpips("alex").to(device), "minutes": args.minutes, "progress": kind.value}
    def critic(log: dict) -> dict:  # a D for the generator as it stands: a longer schedule trains a new one
        return {"seed": seed, "checkpoint": work / f"critic-{log['step']}.pt", "progress": f"{kind.value}'s D"}

    if kind is Kind.G_WORLD:
        with seeded_build(seed, "G_world"):
            net, d = TriPlaneGenerator(config=cfg), discriminator_config(cfg).build()
        net, log = pretrain(net.to(device), settings=settings, **train)
        if log["done"]:
            d, d_log = warm_critic_3d(d.to(device), net, pool=pool, steps=settings.critic_steps, **critic(log))
            made = held_out_renders(net, held_out)["image"]
        config, how, batch = cfg.to_dict(), route(settings), settings.batch
    else:
        gan = gan_config(profile)
        if gan.z_dim != IMAGE_CODE_DIM:
            raise ValueError(f"S_world's z is the image code ({IMAGE_CODE_DIM} numbers); the {args.profile} profile's "
                             f"style_prior.z_dim is {gan.z_dim}")
        settings = SETTINGS_2D[args.profile]
        with seeded_build(seed, "S_world"):
            net, d = build_2d(gan)
        net, log = pretrain_2d(net.to(device), settings=settings, **train)
        if log["done"]:
            d, d_log = warm_critic_2d(d.to(device), net, pool=pool, steps=settings.critic_steps, **critic(log))
            made = held_out_images_2d(net, held_out)
        how = f"{settings.steps} steps of regression (L1 + LPIPS-alex{cooled(settings.cooldowns)})"
        config, batch = asdict(gan), settings.batch
    how += f", then {settings.critic_steps} steps of its discriminator against it (released beside it)"
    atomic_write_bytes(work / "curve.json", json.dumps(log["curve"], indent=1).encode())
    last = log["curve"][-1] if log["curve"] else {}
    quality = {k: v for k, v in last.items() if k in ("face_detection", "identification") or k.endswith("_to_truth")}
    card = {"name": f"{kind.value} ({args.profile})", "description": DESCRIPTION[kind],
            **made_by(command=shlex.join(command), seed=seed, device=device),
            "wall_time_s": round(time.perf_counter() - began, 1), "train_time_s": round(log["seconds"], 1),
            "steps": log["step"], "images_seen": log["step"] * batch, "schedule_done": log["done"], "route": how,
            "settings": asdict(settings), "config": config, "pool_photos": len(pool["z"]),
            "quality": quality, "quality_n": EVAL_IDENTITIES,
            "critic_curve": d_log["curve"] if log["done"] else [], "measures": {"lpips": judge.lpips.name,
                                                                           "identity": judge.identity_net.name},
            "curve": log["curve"]}
    summary = {"work": str(work), "steps": log["step"], "done": log["done"], "quality": quality}
    if log["done"]:
        out = args.out or released_weights_dir() / f"{kind.value}-{args.profile}"
        paths = write_release(out, net=net, kind=kind, config=config, card=card, discriminator=d.eval(),
                              grid=held_out_grid(held_out["images"], made))
        summary |= {k: str(p) for k, p in paths.items()}
    print(json.dumps(summary, indent=1))
    return card


if __name__ == "__main__":
    main()
