"""The metrics command (see :mod:`portraitlib.metrics`):

    python -m portraitlib.metrics lpips A.png B.png [--net alex|vgg]   # prints the distance
    python -m portraitlib.metrics quality DIR                          # the measures of your images
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from portraitlib import metrics, quality
from portraitlib.faces import PhotoError, load_photo


def _image(path: str) -> torch.Tensor:
    """(1, 3, H, W) in [0, 1] of an image file (clear errors for unreadable ones)."""
    return torch.tensor(load_photo(path), device="cpu").permute(2, 0, 1)[None].float() / 255


def main(argv: list[str] | None = None) -> int:
    """The metrics command: LPIPS between two images, or the quality measures of a folder."""
    parser = argparse.ArgumentParser(prog="python -m portraitlib.metrics", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    lp = commands.add_parser("lpips", help="LPIPS distance between two images of one size")
    lp.add_argument("a")
    lp.add_argument("b")
    lp.add_argument("--net", choices=("alex", "vgg"), default="alex", help="the trunk (default: alex)")
    qu = commands.add_parser("quality", help="face detection rate of the images in a folder")
    qu.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "lpips":
            a, b = _image(args.a), _image(args.b)
            if a.shape != b.shape:
                raise PhotoError(f"{args.a} is {tuple(a.shape[2:])} px but {args.b} is {tuple(b.shape[2:])} px")
            net = metrics.load_lpips(args.net)
            print(f"{net(a, b).item():.4f}  ({net.name}: {net.weights})")
            return 0
        files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))
        if not files:
            raise PhotoError(f"{args.folder}: no PNG, JPEG or WebP images")
        rate = quality.face_detection_rate(torch.cat([F.interpolate(_image(str(f)), size=256, mode="bilinear",
                                                                    antialias=True, align_corners=False)
                                                      for f in files]))
        print(f"{len(files)} images: face detection {rate:.3f} (MediaPipe face mesh)")
        return 0
    except (PhotoError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
