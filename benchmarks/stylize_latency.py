"""Latency of the stylizer: aligned photo -> W+ codes -> one view, on this machine.

    .venv/bin/python benchmarks/stylize_latency.py [--profile mini] [--style anime] [--repeats 50]

Uses the profile's trained networks (read-only: run ``make study`` first). Prints the median and
best time per photo and the render resolution (issue #9's target: under 0.2 s for a 64 px view in
the mini profile on a 2-core CPU).
"""
import argparse

import torch

import portraitlib as pl
from portraitlib import consistency, portrait, study_data

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--profile", default="mini")
parser.add_argument("--style", default=None, help="default: the profile's first style")
parser.add_argument("--repeats", type=int, default=50)
args = parser.parse_args()

ctx = pl.setup("benchmark_stylize", profile=args.profile, read_only=True)
style = args.style or ctx.profile.world.styles[0]
stylizer = portrait.study_stylizer(ctx, styles=[style], progress=False)
photo = study_data.load_images(ctx).real_test[:1]
for yaw in (0.0, 30.0):
    timing = portrait.latency(stylizer, photo, style=style, label=consistency.yaw_labels([yaw]), repeats=args.repeats)
    print(f"{args.profile} {style} yaw {yaw:+.0f}: photo ({photo.shape[-1]} px) -> codes -> one "
          f"{stylizer.resolution} px view: median {timing['median'] * 1000:.1f} ms, best {timing['best'] * 1000:.1f} ms "
          f"({timing['repeats']} runs, {timing['threads']} threads, torch {torch.__version__})")
