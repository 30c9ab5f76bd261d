"""One photo to a stylized 3D portrait, from the shell:

    python -m portraitlib.stylize PHOTO --style cartoon --out DIR [--profile mini]

The photo is aligned (:func:`portraitlib.faces.align_face`), inverted by the study's W+ encoder and
rendered by the style's guided generator (notebooks 01-05 must have been run for the profile:
``make study``; nothing is trained here). DIR receives the aligned input, a view per camera with
its depth and normal maps, a strip of all views, the mesh (PLY, OBJ, GLB) and ``cameras.json``
(every camera's EG3D label, the photo's estimated camera, and which networks made the portrait).

Exit status: 0 done; 2 bad input (unreadable photo, no face, unknown style or profile);
3 the style or an earlier stage is not trained for this profile.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from portraitlib import cameras, consistency, faces, mesh, viz
from portraitlib.cache import MissingArtefactError
from portraitlib.portrait import Stylizer, study_stylizer
from portraitlib.profile_loading import load_profile
from portraitlib.profiles import ProfileError
from portraitlib.study import setup


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m portraitlib.stylize", description=__doc__.split("\n")[0])
    parser.add_argument("photo", type=Path, help="a photo with a face (JPEG, PNG, ...)")
    parser.add_argument("--style", required=True, help="a style the profile trained, e.g. cartoon")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--profile", default="mini", help="whose trained networks to use (default: mini)")
    parser.add_argument("--seed", type=int, default=None, help="the profile's seed unless given")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    parser.add_argument("--yaws", type=float, nargs="+", default=[-40.0, -20.0, 0.0, 20.0, 40.0],
                        help="camera yaws in degrees (default: -40 -20 0 20 40)")
    parser.add_argument("--pitches", type=float, nargs="+", default=[0.0], help="camera pitches in degrees")
    parser.add_argument("--mesh-resolution", type=int, default=128, help="marching-cubes grid (0: no mesh)")
    return parser.parse_args(argv)


def save_png(image: torch.Tensor, path: Path) -> None:
    """An image (3, R, R) in [0, 1] as an 8-bit PNG."""
    viz.to_pil(image).save(path)


def write_portrait(stylizer: Stylizer, photo: torch.Tensor, *, style: str, yaws: list[float], pitches: list[float],
                   out: Path, mesh_resolution: int) -> dict:
    """Render the aligned ``photo`` (1, 3, R, R) in ``style`` at every (yaw, pitch) and write the
    files into ``out``; returns the manifest written as ``cameras.json`` (without provenance)."""
    out.mkdir(parents=True, exist_ok=True)
    angles = [(y, p) for p in pitches for y in yaws]
    labels = cameras.labels_from_angles([a[0] for a in angles], [a[1] for a in angles])
    started = time.perf_counter()
    codes = stylizer.codes(photo)
    rendered = stylizer.render_codes(codes, style=style, labels=labels)
    seconds = time.perf_counter() - started
    generator = stylizer.generators[style]
    g_cfg = generator.config
    views = []
    for k, (yaw, pitch) in enumerate(angles):
        stem = f"view_yaw{yaw:+05.1f}_pitch{pitch:+05.1f}"
        depth = rendered["depth"][0, k:k + 1]
        save_png(rendered["image"][0, k], out / f"{stem}.png")
        save_png(viz.depth_rgb(depth, near=g_cfg.ray_start, far=g_cfg.ray_end, size=g_cfg.img_resolution)[0],
                 out / f"{stem}_depth.png")
        save_png(consistency.normal_map(depth, labels[k:k + 1])[0], out / f"{stem}_normals.png")
        np.save(out / f"{stem}_depth.npy", depth[0, 0].cpu().numpy())
        views.append({"image": f"{stem}.png", "yaw": yaw, "pitch": pitch, "label": labels[k].tolist()})
    strip = torch.cat(list(rendered["image"][0]), dim=2)
    save_png(strip, out / "strip.png")
    manifest = {"style": style, "views": views, "render_seconds": seconds,
                "depth": "ray distance in EG3D world units (the head is about 0.5 wide), *_depth.npy"}
    if mesh_resolution > 0:
        try:
            surface = mesh.extract(generator, codes, resolution=mesh_resolution)
        except mesh.NoSurfaceError as error:  # e.g. an untrained generator that renders fog
            manifest["mesh"] = {"error": str(error)}
            print(f"warning: no mesh: {error}", file=sys.stderr)
            return manifest
        paths = mesh.export(surface, out, "mesh")
        manifest["mesh"] = {"files": {k: v.name for k, v in paths.items()}, "vertices": len(surface.vertices),
                            "faces": len(surface.faces), "units": "EG3D world (+y up, face toward +z)"}
    return manifest


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        profile = load_profile(args.profile)
    except ProfileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.style not in profile.world.styles:
        print(f"error: unknown style {args.style!r}; profile {profile.name!r} has {list(profile.world.styles)}",
              file=sys.stderr)
        return 2
    try:
        aligned = faces.align_face(args.photo)
    except faces.PhotoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for note in aligned.notes:  # e.g. several faces: which one is stylized (also in cameras.json)
        print(f"note: {args.photo}: {note}")
    try:
        ctx = setup("stylize", profile=args.profile, seed=args.seed, device=args.device, read_only=True, quiet=True)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        stylizer = study_stylizer(ctx, styles=[args.style], progress=False)
    except MissingArtefactError as error:
        print(f"error: style {args.style!r} is not trained for profile {profile.name!r} (seed {ctx.seed}): run "
              f"`make study PROFILE={profile.name}` (notebooks 01-05) first.\n  ({error})", file=sys.stderr)
        return 3
    photo = torch.from_numpy(aligned.image).permute(2, 0, 1).float().div(255).unsqueeze(0)
    args.out.mkdir(parents=True, exist_ok=True)
    save_png(photo[0], args.out / "input_aligned.png")
    manifest = write_portrait(stylizer, photo, style=args.style, yaws=args.yaws, pitches=args.pitches, out=args.out,
                              mesh_resolution=args.mesh_resolution)
    manifest["input"] = {"photo": args.photo.name, "aligned": "input_aligned.png", "yaw": aligned.yaw,
                         "pitch": aligned.pitch, "roll": aligned.roll, "label": aligned.label.tolist(),
                         "notes": aligned.notes}
    manifest["provenance"] = {**stylizer.provenance, **ctx.provenance()}
    (args.out / "cameras.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{args.photo} -> {args.out}: {len(manifest['views'])} views of style {args.style!r}"
          + (f", mesh with {manifest['mesh']['vertices']} vertices" if "vertices" in manifest.get("mesh", {}) else "")
          + f" (G: {stylizer.provenance['G']}; profile {profile.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
