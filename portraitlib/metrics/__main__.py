"""The metrics command (see :mod:`portraitlib.metrics`):

    python -m portraitlib.metrics lpips A.png B.png [--net alex|vgg]   # prints the distance
    python -m portraitlib.metrics quality DIR [--look cartoon]         # the measures of your images
    python -m portraitlib.metrics clipscore IMG --text "a cartoon of a person" [--weights FILE]
                                                                       # CLIP score (cosine), world CLIP or real
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from portraitlib import metrics, quality
from portraitlib.cache import ArtifactCache, MissingArtefactError
from portraitlib.look import look_accuracy
from portraitlib.profiles import STYLES
from portraitlib.faces import PhotoError, load_photo


def _image(path: str) -> torch.Tensor:
    """(1, 3, H, W) in [0, 1] of an image file (clear errors for unreadable ones)."""
    return torch.tensor(load_photo(path), device="cpu").permute(2, 0, 1)[None].float() / 255


def _clipscore(args: argparse.Namespace) -> int:
    """Print the CLIP score of ``args.image`` and ``args.text`` with the CLIP that produced it."""
    from portraitlib.clip import load_pretrained, study_clip
    from portraitlib.study import setup

    if args.weights:
        clip = load_pretrained(args.model, args.weights)
    else:
        clip = study_clip(setup("metrics_clipscore", profile=args.profile, read_only=True, quiet=True),
                          progress=False)[0]
    with torch.no_grad():
        score = clip(_image(args.image).to(clip.mean.device), [args.text]).item()
    print(f"{score:.4f}  ({clip.name}: {clip.weights})")
    return 0


def _look(images: torch.Tensor, args: argparse.Namespace) -> int:
    """Print the look accuracy of ``images`` for ``args.look`` and what the classifier saw instead."""
    from portraitlib.look import study_look_classifier
    from portraitlib.profile_loading import load_profile

    profile = load_profile(args.profile)
    if args.look != "real" and args.look not in profile.world.styles:
        raise PhotoError(f"profile {profile.name!r} has no look classifier for {args.look!r}; its looks: "
                         f"{['real', *profile.world.styles]}")
    cache = ArtifactCache(profile=profile.name, seed=profile.seed, read_only=True)
    classifier, _ = study_look_classifier(cache=cache, config=profile.world, seed=profile.seed)
    seen = torch.bincount(classifier.predict(images), minlength=len(classifier.looks))
    print(f"look accuracy ({args.look}) {look_accuracy(images, args.look, classifier):.3f}; classified as "
          + ", ".join(f"{name} {int(k)}" for name, k in zip(classifier.looks, seen))
          + f" (look classifier of profile {profile.name}, seed {profile.seed})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The metrics command: LPIPS between two images, the quality measures of a folder, or a CLIP score."""
    parser = argparse.ArgumentParser(prog="python -m portraitlib.metrics", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    lp = commands.add_parser("lpips", help="LPIPS distance between two images of one size")
    lp.add_argument("a")
    lp.add_argument("b")
    lp.add_argument("--net", choices=("alex", "vgg"), default="alex", help="the trunk (default: alex)")
    qu = commands.add_parser("quality", help="face detection rate (and look accuracy) of the images in a folder")
    qu.add_argument("folder", type=Path)
    qu.add_argument("--look", choices=("real", *STYLES), help="the intended look: report the fraction the study's "
                                                              "look classifier (world renders) calls it")
    qu.add_argument("--profile", default="mini", help="profile whose look classifier to use (default: mini)")
    cs = commands.add_parser("clipscore", help="CLIP score (the cosine, as seed 001 reports it) of an image and a text")
    cs.add_argument("image")
    cs.add_argument("--text", required=True, help="the prompt, e.g. 'a cartoon of a person'")
    cs.add_argument("--weights", type=Path, help="real open_clip weights (default: the profile's CLIP, read "
                                                   "from the artefact cache: the world CLIP unless it names weights)")
    cs.add_argument("--model", default="ViT-B-32-quickgelu", help="open_clip architecture of --weights "
                                                                  "(default: ViT-B-32-quickgelu, OpenAI's)")
    cs.add_argument("--profile", default="mini", help="profile whose CLIP to use without --weights (default: mini)")
    args = parser.parse_args(argv)
    try:
        if args.command == "lpips":
            a, b = _image(args.a), _image(args.b)
            if a.shape != b.shape:
                raise PhotoError(f"{args.a} is {tuple(a.shape[2:])} px but {args.b} is {tuple(b.shape[2:])} px")
            net = metrics.load_lpips(args.net)
            print(f"{net(a, b).item():.4f}  ({net.name}: {net.weights})")
            return 0
        if args.command == "clipscore":
            return _clipscore(args)
        files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))
        if not files:
            raise PhotoError(f"{args.folder}: no PNG, JPEG or WebP images")
        images = torch.cat([F.interpolate(_image(str(f)), size=256, mode="bilinear", antialias=True,
                                          align_corners=False) for f in files])
        print(f"{len(files)} images: face detection {quality.face_detection_rate(images):.3f} (MediaPipe face mesh)")
        if args.look:
            return _look(images, args)
        return 0
    except MissingArtefactError as error:
        print(f"error: the look classifier is not built yet: run `make study` (notebook 00) first ({error})",
              file=sys.stderr)
        return 3
    except (PhotoError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
