"""Speed and memory of the tri-plane generator on this machine (and on a GPU when present).

    .venv/bin/python benchmarks/generator.py [--device cpu|cuda] [--skip-paper]

Prints seconds per 512x512 image at the official ffhq512-128 config (forward, no grad) and
images per second for a forward+backward step at the mini config, with peak memory.
"""
import argparse
import resource
import time

import torch

from portraitlib import cameras
from portraitlib.nets import configs
from portraitlib.nets.triplane import TriPlaneGenerator


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, device, repeats):
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-paper", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} on {name}")
    gen = torch.Generator().manual_seed(0)
    if not args.skip_paper:
        g = TriPlaneGenerator(config=configs.PAPER).to(device).eval()
        z = torch.randn(1, 512, generator=gen).to(device)
        c = cameras.labels_from_angles(0.0, 0.0).to(device)
        with torch.no_grad():
            g(z, c)  # warm-up
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            seconds = timed(lambda: g(z, c), device, args.repeats)
        mem = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else peak_rss_mib()
        print(f"paper config (ffhq512-128, 96 samples/ray): {seconds:.2f} s per 512x512 image; "
              f"peak memory {mem:.0f} MiB ({'GPU' if device.type == 'cuda' else 'process RSS'})")
        del g
    for label, cfg, batch in (("mini", configs.MINI, 4), ("mini", configs.MINI, 8), ("smoke", configs.SMOKE, 4)):
        g = TriPlaneGenerator(config=cfg).to(device)
        z = torch.randn(batch, cfg.z_dim, generator=gen).to(device)
        c = cameras.labels_from_angles(torch.zeros(batch), torch.zeros(batch)).to(device)

        def step():
            out = g(z, c)
            (out["image"].mean() + out["image_raw"].mean()).backward()

        step()
        seconds = timed(step, device, args.repeats)
        print(f"{label} config, batch {batch}: forward+backward {seconds:.3f} s = {batch / seconds:.1f} images/s "
              f"({cfg.img_resolution} px from {cfg.neural_rendering_resolution}^2 rays x "
              f"{cfg.coarse_samples + cfg.fine_samples} samples)")


if __name__ == "__main__":
    main()
