"""Prepare face photos or style exemplars in EG3D layout for a profile (paper by default):

    python -m portraitlib.prepare photos DIR [--split train|test] [--out OUT] [--resolution R] [--limit N]
    python -m portraitlib.prepare exemplars DIR --style NAME [--out OUT] [--resolution R]

Without ``--out`` the folder goes where the profile reads it (``<cache>/data/celebahq_<split>`` or
``<cache>/data/exemplars/<style>``; ``python -m portraitlib.run --profile paper --check`` lists
them). Run the same command again to continue an interrupted run.

Exit status: 0 done (some files may have been refused: see the summary); 1 no usable image at
all; 2 bad command (unknown profile or style, missing folder, an output folder made with other
settings).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from portraitlib.prepare.core import SPLITS, TEST_FRACTION, default_out, format_summary, prepare
from portraitlib.prepare.state import PrepareError
from portraitlib.profile_loading import load_profile
from portraitlib.profiles import ProfileError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m portraitlib.prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    photos = commands.add_parser("photos", help="real face photos (CelebA-HQ, FFHQ, your own)")
    exemplars = commands.add_parser("exemplars", help="one style's exemplars (~20 portraits)")
    for sub in (photos, exemplars):
        sub.add_argument("folder", type=Path, metavar="DIR", help="images (.jpg .jpeg .png .webp), subfolders too")
        sub.add_argument("--out", type=Path, default=None, help="output folder (default: where the profile reads it)")
        sub.add_argument("--profile", default="paper", help="the profile whose data this is (default: paper)")
        sub.add_argument("--resolution", type=int, default=None,
                         help="side of the aligned crops, px (default: the profile's world.image_size)")
        sub.add_argument("--limit", type=int, default=None, help="stop once the output holds N images")
        sub.add_argument("--min-face", type=int, default=None,
                         help="refuse faces whose box in the photo is smaller than this, px "
                              "(default: resolution/8; 0: off)")
        sub.add_argument("--no-progress", action="store_true", help="no progress bar")
    photos.add_argument("--split", choices=SPLITS, default="train", help="which split to take (default: train)")
    photos.add_argument("--test-fraction", type=float, default=TEST_FRACTION,
                        help=f"share of the photos held out as the test split, chosen by a hash of their file "
                             f"names (default {TEST_FRACTION:.4f}: CelebA-HQ's 30000 give ~2000); 0: no split, "
                             "take every photo (a folder already split)")
    exemplars.add_argument("--style", required=True, help="one of the profile's styles, e.g. cartoon")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        profile = load_profile(args.profile)
    except ProfileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    style = getattr(args, "style", None)
    if args.command == "exemplars" and style not in profile.world.styles:
        print(f"error: unknown style {style!r}; profile {profile.name!r} has: {', '.join(profile.world.styles)}",
              file=sys.stderr)
        return 2
    resolution = args.resolution or profile.world.image_size
    test_fraction = getattr(args, "test_fraction", 0.0)
    if resolution < 16 or not 0 <= test_fraction < 1 or (args.limit is not None and args.limit < 0):
        print("error: --resolution must be at least 16, --test-fraction in [0, 1) and --limit not negative",
              file=sys.stderr)
        return 2
    if profile.data_source != "celebahq":
        print(f"note: profile {profile.name!r} trains on the synthetic world; these folders are the paper "
              "profile's data", file=sys.stderr)
    split = getattr(args, "split", "train")
    out = args.out or default_out(kind=args.command, style=style, split=split)
    try:
        summary = prepare(source=args.folder, out=out, kind=args.command, resolution=resolution, style=style,
                          split=split, test_fraction=test_fraction, limit=args.limit,
                          min_face=resolution // 8 if args.min_face is None else args.min_face,
                          profile=profile.name, progress=not args.no_progress)
    except PrepareError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    if args.out is None:
        print(f"  check: python -m portraitlib.run --profile {profile.name} --check")
    return 0 if summary["in_dataset"] else 1


if __name__ == "__main__":
    sys.exit(main())
