"""Render throughput of the head world on this machine (images per second).

    .venv/bin/python benchmarks/world_render.py [--batch 32] [--repeats 3]
"""
import argparse
import time

import torch

from portraitlib import cameras, world


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    heads = world.params_from_latent(world.sample_latents(args.batch, generator=g))
    cams = cameras.orbit_camera(*cameras.sample_poses(args.batch, generator=g)[:, :2].T)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    for look in ("real", "comic"):
        for res, supersample in ((64, 1), (64, 2), (128, 1)):
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                world.render(heads, cams, resolution=res, supersample=supersample, style=world.get_style(look))
                times.append(time.perf_counter() - start)
            best = min(times)
            print(f"{look:>5} {res:>3} px x{supersample} supersampling: {args.batch / best:6.1f} images/s "
                  f"({best / args.batch * 1000:.1f} ms/image, best of {args.repeats})")


if __name__ == "__main__":
    main()
