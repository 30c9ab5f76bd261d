"""Peak memory of training on a photo folder: loaded as one float tensor vs read on demand.

    python benchmarks/streaming_rss.py --folder /tmp/rss_photos [--n 2000] [--resolution 512] [--steps 20]

Writes ``n`` smooth random photos (uint8 PNG, EG3D layout) into ``--folder`` once, then runs the
2D GAN loop (a narrow StyleGAN2 at that resolution, batch 4) for ``--steps`` steps in a fresh
process per mode and prints each process's peak resident set size (``ru_maxrss``) and step time:
``eager`` loads the folder with ``datasets.load_eg3d`` (what the paper profile did), ``streamed``
indexes a ``FolderImages``. The ratio is measured in this one run.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch


def make_folder(folder: Path, *, n: int, resolution: int) -> None:
    """n smooth random photos in EG3D layout, written 100 at a time (the whole set never in memory)."""
    from PIL import Image

    from portraitlib.cache import atomic_write_bytes
    from portraitlib.world import datasets

    if (folder / "dataset.json").exists() and len(datasets.eg3d_labels(folder)[1]) == n:
        return
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    entries = []
    for i in range(0, n, 100):  # smooth images (PNG sizes like photos', not like noise's)
        low = torch.rand(min(100, n - i), 3, 16, 16, generator=g)
        chunk = torch.nn.functional.interpolate(low, size=resolution, mode="bicubic").clamp(0, 1)
        for j, pixels in enumerate(datasets.to_uint8(chunk)):
            name = f"img_{i + j:08d}.png"
            Image.fromarray(pixels).save(folder / name)
            entries.append([name, torch.randn(25, generator=g).tolist()])
    atomic_write_bytes(folder / "dataset.json", json.dumps({"labels": entries}).encode())


def run_mode(folder: Path, mode: str, steps: int, resolution: int) -> dict:
    from portraitlib.training.gan2d import GAN2DConfig, TrainSettings, build_2d, train_2d
    from portraitlib.world import datasets
    from portraitlib.world.folder_images import FolderImages

    torch.set_num_threads(2)
    start = time.perf_counter()
    images = datasets.load_eg3d(folder)[0] if mode == "eager" else FolderImages(folder)
    loaded = time.perf_counter() - start
    torch.manual_seed(0)
    g, d = build_2d(GAN2DConfig(resolution=resolution, z_dim=16, w_dim=16, mapping_layers=1,
                                channel_base=8 * resolution, channel_max=8))
    start = time.perf_counter()
    train_2d(g, d, images, settings=TrainSettings(steps=steps, batch=4, r1_every=4), seed=0)
    return {"mode": mode, "photos": len(images), "load_s": round(loaded, 1),
            "step_s": round((time.perf_counter() - start) / steps, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--mode", choices=("eager", "streamed"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:  # one measurement, in its own process
        print(json.dumps(run_mode(args.folder, args.mode, args.steps, args.resolution)))
        return
    make_folder(args.folder, n=args.n, resolution=args.resolution)
    rows = []
    for mode in ("streamed", "eager"):
        out = subprocess.run([sys.executable, __file__, "--folder", str(args.folder), "--steps", str(args.steps),
                              "--resolution", str(args.resolution), "--mode", mode],
                             check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    print(f"peak RSS eager / streamed: {rows[1]['peak_rss_mb'] / rows[0]['peak_rss_mb']:.1f}x "
          f"({args.n} photos at {args.resolution} px)")


if __name__ == "__main__":
    main()
