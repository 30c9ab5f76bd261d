"""Pretrain G_world, the study's 3D base generator, on the head world (issue #19).

    python -m portraitlib.pretrain --profile mini [--device auto] [--minutes M] [--out DIR]

Writes into DIR (default: the cache root's ``weights/G_world-<profile>/``): ``pool.pt`` (the
rendered training photos, made once), ``checkpoint.pt`` (atomic, resumable: run the same command
again to continue), ``curve.json`` (held-out measures per ``eval_every`` steps) and, at the end,
``G_world.safetensors`` with ``model_card.json`` / ``model_card.md``. ``--minutes`` bounds the
training time of this invocation; the card says whether the schedule finished.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from portraitlib.cache import atomic_torch_save, atomic_write_bytes, safe_torch_load
from portraitlib.device import DEVICE_CHOICES, configure_backends, pick_device, seeded_build
from portraitlib.metrics import load_lpips
from portraitlib.nets import configs
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.paths import weights_path
from portraitlib.pretrain.card import write_release
from portraitlib.pretrain.train import SETTINGS, make_eval_set, make_pool, pretrain, route
from portraitlib.profile_loading import load_profile
from portraitlib.provenance import git_commit

EVAL_IDENTITIES = 32
"""Held-out identities measured along the way and on the card."""


def _cached(path: Path, build, *, rows: int, z_dim: int) -> dict:
    """The data set saved at ``path``, built and saved atomically on first use."""
    if path.exists():
        value = safe_torch_load(path)
        if value["z"].shape != (rows, z_dim):
            raise ValueError(f"{path} holds {tuple(value['z'].shape)} codes, not ({rows}, {z_dim}): another "
                             "profile's or setting's data; use another --out or delete it")
        return value
    value = build()
    atomic_torch_save(value, path)
    return value


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m portraitlib.pretrain", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="mini", choices=sorted(SETTINGS))
    parser.add_argument("--device", default="auto", help=f"{', '.join(DEVICE_CHOICES)} or cuda:N")
    parser.add_argument("--minutes", type=float, default=None, help="training time budget of this invocation")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--seed", type=int, default=None, help="default: the profile's seed")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--pool", type=int, default=None, help="training photos (default: the profile's setting)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = load_profile(args.profile)
    seed = profile.seed if args.seed is None else args.seed
    settings, cfg = SETTINGS[args.profile], configs.named(profile.eg3d.generator)
    if args.pool:
        settings = replace(settings, pool=args.pool)
    out = args.out or weights_path(f"G_world-{args.profile}")
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(args.device)
    configure_backends(device)
    began = time.perf_counter()

    world = {"z_dim": cfg.z_dim, "config": profile.world, "resolution": cfg.img_resolution, "seed": seed}
    pool = _cached(out / "pool.pt", lambda: make_pool(n=settings.pool, supersample=settings.pool_supersample,
                                                      max_yaw=settings.max_yaw, max_pitch=settings.max_pitch,
                                                      progress="world photos", **world),
                   rows=settings.pool, z_dim=cfg.z_dim)
    held_out = _cached(out / "held_out.pt", lambda: make_eval_set(n=EVAL_IDENTITIES, **world),
                       rows=EVAL_IDENTITIES, z_dim=cfg.z_dim)
    with seeded_build(seed, "G_world"):
        generator = TriPlaneGenerator(config=cfg)
    generator.to(device)
    lpips = load_lpips("vgg").to(device)
    generator, log = pretrain(generator, pool=pool, held_out=held_out, settings=settings, seed=seed,
                              checkpoint=out / "checkpoint.pt", lpips=lpips, minutes=args.minutes,
                              progress="G_world")
    atomic_write_bytes(out / "curve.json", json.dumps(log["curve"], indent=1).encode())
    last = log["curve"][-1] if log["curve"] else {}
    quality = {k: v for k, v in last.items() if k == "face_detection" or k.endswith("_to_truth")}
    card = {"name": f"G_world ({args.profile})",
            "description": "EG3D tri-plane generator pretrained on the synthetic head world: z holds the identity "
                           "latent, the photo's light and background quantiles, then free noise (see "
                           "portraitlib.pretrain.world).",
            "command": shlex.join([Path(sys.executable).name, "-m", "portraitlib.pretrain", *sys.argv[1:]]
                                  if argv is None else ["python", "-m", "portraitlib.pretrain", *argv]),
            "commit": git_commit(), "seed": seed, "device": str(device), "torch": torch.__version__,
            "wall_time_s": round(time.perf_counter() - began, 1), "train_time_s": round(log["seconds"], 1),
            "steps": log["step"], "images_seen": log["step"] * settings.batch, "schedule_done": log["done"],
            "route": route(settings),
            "settings": asdict(settings), "generator_config": cfg.to_dict(), "pool_photos": len(pool["z"]),
            "quality": quality, "quality_n": EVAL_IDENTITIES, "curve": log["curve"]}
    paths = write_release(out, generator=generator, card=card)
    print(json.dumps({"out": str(out), **{k: str(p) for k, p in paths.items()}, "quality": quality}, indent=1))
    return card


if __name__ == "__main__":
    main()
