"""A folder of face photos or style exemplars to EG3D's layout, resumably (the logic of
``python -m portraitlib.prepare``).

Every image under the input folder (``.jpg``, ``.jpeg``, ``.png``, ``.webp``, in subfolders too) is
aligned by :func:`portraitlib.faces.align_face` to an FFHQ crop of ``resolution`` px with its EG3D
camera label, and written as a PNG (:func:`portraitlib.prepare.sources.output_name`); a file
that cannot be used is refused with its reason, never stopping the run. A run continues what
an earlier one in the same output folder did (:class:`portraitlib.prepare.state.Journal`).
"""
from __future__ import annotations

import io
import json
import time
from collections import Counter
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from portraitlib import faces
from portraitlib.paths import cache_dir
from portraitlib.prepare.sources import (REJECT_KINDS, Source, in_test_split, list_sources, not_an_image,
                                         output_name, rejection)
from portraitlib.cache import atomic_write_bytes
from portraitlib.prepare.state import SUMMARY, Journal, PrepareError

KINDS = ("photos", "exemplars")
"""What a folder holds: real face photos, or one style's exemplars."""
SPLITS = ("train", "test")
"""The photo splits the paper profile reads."""
TEST_FRACTION = 1 / 15
"""Default share of a photo folder held out as the test split: CelebA-HQ's 30000 photos give
about 28000 and 2000, the paper's split."""
FLUSH_SECONDS = 60.0
"""Longest time between two rewrites of ``dataset.json`` during a run."""


def default_out(*, kind: str, style: str | None = None, split: str = "train") -> Path:
    """Where the paper profile reads a prepared folder (``portraitlib.inventory.needs``): under the
    cache root, ``data/celebahq_<split>`` for photos, ``data/exemplars/<style>`` for exemplars."""
    data = cache_dir() / "data"
    return data / "exemplars" / str(style) if kind == "exemplars" else data / f"celebahq_{split}"


def prepare_one(*, source: Source, out: Path, resolution: int, min_face: int = 0) -> dict:
    """Align the image ``source`` and write its (resolution, resolution, 3) crop as a PNG in ``out``.

    Returns the journal record: ``source`` (path under the input folder), ``size``, ``mtime_ns``
    and ``status``; written: ``file``, ``label`` (25 floats), ``yaw``, ``pitch``, ``roll``
    (degrees), ``n_faces``, ``box`` ((x, y, w, h) of the face in the photo) and ``notes``;
    refused: ``kind`` (one of ``REJECT_KINDS``) and ``reason``. Bad input is refused, never raised.
    """
    base = {"source": source.rel, "size": source.size, "mtime_ns": source.mtime_ns}
    try:
        aligned = faces.align_face(source.path, size=resolution)
    except Exception as error:  # any undecodable or unusable input: refused with its reason
        kind, reason = rejection(error, path=source.path)
        return {**base, "status": "rejected", "kind": kind, "reason": reason}
    box = list(aligned.box) if aligned.box is not None else None
    if min_face and box is not None and min(box[2], box[3]) < min_face:
        return {**base, "status": "rejected", "kind": "face_too_small",
                "reason": f"the face is {box[2]}x{box[3]} px in the photo; at least {min_face} px wanted "
                          f"for {resolution}-px crops (--min-face)"}
    name = output_name(rel=source.rel)
    buffer = io.BytesIO()
    Image.fromarray(aligned.image).save(buffer, format="PNG")
    atomic_write_bytes(out / name, buffer.getvalue())
    return {**base, "status": "written", "file": name, "label": [round(float(v), 7) for v in aligned.label],
            "yaw": round(aligned.yaw, 2), "pitch": round(aligned.pitch, 2), "roll": round(aligned.roll, 2),
            "n_faces": aligned.n_faces, "box": box, "notes": list(aligned.notes)}


def prepare(*, source: Path, out: Path, kind: str, resolution: int, style: str | None = None,
            split: str = "train", test_fraction: float = 0.0, limit: int | None = None, min_face: int = 0,
            profile: str = "", progress: bool = True, flush_every: int = 200) -> dict:
    """Prepare every image under the folder ``source`` into ``out`` (EG3D layout), continuing what
    an earlier run there did; returns the summary, also written as ``out/prepare_summary.json``.

    ``kind``: ``photos`` or ``exemplars`` (of ``style``). Photos only: with ``test_fraction`` > 0
    the files are split by a hash of their names and only ``split``'s are taken. ``limit``: stop
    adding once ``out`` holds that many images. ``min_face``: refuse faces whose box is narrower
    (pixels of the photo; 0: no check). ``dataset.json`` is rewritten after every new image while
    the folder holds under 100, then every 2% of them up to ``flush_every``, at least every minute,
    and at the end (also when the run is interrupted): a hard kill leaves at most that many PNGs
    it does not list yet, which the next run adds.
    Raises :class:`PrepareError` for a missing folder or an ``out`` made with other settings.
    """
    if kind not in KINDS or split not in SPLITS:
        raise PrepareError(f"kind must be one of {list(KINDS)} and split one of {list(SPLITS)}")
    root, out = Path(source).resolve(), Path(out).resolve()
    if not root.is_dir():
        raise PrepareError(f"{source}: no such folder")
    if out == root:
        raise PrepareError(f"{out}: the output folder must not be the input folder")
    split_on = kind == "photos" and test_fraction > 0
    settings = {"kind": kind, "style": style, "split": split if kind == "photos" else None,
                "test_fraction": round(test_fraction, 6) if split_on else 0.0, "resolution": resolution,
                "source": str(root)}
    started, files = time.perf_counter(), list_sources(root=root, exclude=out)
    journal = Journal(out=out, settings=settings)
    counts, rejected, noted = Counter(), [], []
    in_dataset, since_flush, flushed_at = len(journal.written()), 0, time.monotonic()
    try:
        bar = tqdm(files, desc=f"prepare {style or kind}", unit="file", disable=not progress)
        for src in bar:
            if not src.is_image_name:
                kind_, reason = not_an_image(src)
                rejected.append({"file": src.rel, "kind": kind_, "reason": reason})
                continue
            if split_on and in_test_split(rel=src.rel, fraction=test_fraction) != (split == "test"):
                counts["other_split"] += 1
                continue
            record = journal.done(src)
            if record is not None:
                counts["already_there" if record["status"] == "written" else "rejected_earlier"] += 1
            elif limit is not None and in_dataset >= limit:
                counts["over_limit"] += 1
                continue
            else:
                record = prepare_one(source=src, out=out, resolution=resolution, min_face=min_face)
                journal.add(record)
                if record["status"] == "written":
                    counts["written"] += 1
                    in_dataset += 1
                    since_flush += 1
                due = max(1, min(flush_every, in_dataset // 50))  # small sets: after every image
                if since_flush >= due or (since_flush and time.monotonic() - flushed_at > FLUSH_SECONDS):
                    journal.write_dataset()
                    since_flush, flushed_at = 0, time.monotonic()
            if record["status"] == "written":
                if record.get("notes"):
                    noted.append({"file": src.rel, "image": record["file"], "notes": record["notes"]})
            else:
                rejected.append({"file": src.rel, "kind": record["kind"], "reason": record["reason"]})
            bar.set_postfix(written=counts["written"], rejected=len(rejected), refresh=False)
    finally:
        total = journal.write_dataset()
        journal.close()
    reasons = Counter(r["kind"] for r in rejected)
    summary = {"command": kind, "style": style, "split": settings["split"], "profile": profile,
               "source": str(root), "out": str(out), "resolution": resolution, "files_seen": len(files),
               "written": counts["written"], "already_there": counts["already_there"], "rejected": len(rejected),
               "rejected_earlier": counts["rejected_earlier"], "other_split": counts["other_split"],
               "over_limit": counts["over_limit"], "in_dataset": total,
               "reasons": {k: reasons[k] for k in REJECT_KINDS if reasons[k]}, "rejections": rejected,
               "notes": noted, "removed_leftovers": journal.removed,
               "seconds": round(time.perf_counter() - started, 2)}
    atomic_write_bytes(out / SUMMARY, (json.dumps(summary, indent=2) + "\n").encode())
    return summary


def format_summary(summary: dict, *, max_lines: int = 20) -> str:
    """The summary as a few lines of text (at most ``max_lines`` refused files and notes each)."""
    what = f"{summary['style']} exemplars" if summary["command"] == "exemplars" else f"{summary['split']} photos"
    lines = [f"prepared {what}: {summary['files_seen']} files seen in {summary['source']}",
             f"  -> {summary['out']} ({summary['resolution']} px): {summary['written']} written now, "
             f"{summary['already_there']} already there; dataset.json lists {summary['in_dataset']} "
             f"image{'' if summary['in_dataset'] == 1 else 's'}"]
    if summary["other_split"] or summary["over_limit"]:
        lines.append(f"  not taken: {summary['other_split']} of the other split, {summary['over_limit']} over --limit")
    if summary["rejected"]:
        reasons = ", ".join(f"{k} {n}" for k, n in summary["reasons"].items())
        earlier = f", {summary['rejected_earlier']} of them in an earlier run" if summary["rejected_earlier"] else ""
        lines.append(f"  rejected: {summary['rejected']} ({reasons}{earlier})")
        lines += [f"    {r['file']}: {r['kind']}: {r['reason']}" for r in summary["rejections"][:max_lines]]
    if summary["notes"]:
        lines.append(f"  notes on {len(summary['notes'])} image(s):")
        lines += [f"    {n['file']} -> {n['image']}: {'; '.join(n['notes'])}" for n in summary["notes"][:max_lines]]
    if summary["removed_leftovers"]:
        lines.append(f"  removed {len(summary['removed_leftovers'])} PNG(s) an interrupted run left unrecorded")
    if len(summary["rejections"]) > max_lines or len(summary["notes"]) > max_lines:
        lines.append("  (more in the summary file)")
    lines.append(f"  summary: {Path(summary['out']) / SUMMARY} ({summary['seconds']} s)")
    return "\n".join(lines)
