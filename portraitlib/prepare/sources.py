"""The input side of the preparation: which files a folder holds, their stable output names, the
train/test split and why a file was refused.

Output names come from a file's path under the folder (``sub/dir/0001.jpg`` ->
``sub__dir__0001_<10 hex digits>.png``, the digits a hash of that path): the same file always gets
the same name, and two files with the same name in different subfolders get different ones.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from portraitlib import faces

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
"""File name endings read as images (any case)."""
OUTPUT_PATTERN = re.compile(r"^[A-Za-z0-9._-]+_[0-9a-f]{10}\.png$")
"""Names this package gives its outputs (:func:`output_name`)."""
REJECT_KINDS = ("not_image", "unreadable", "too_small", "no_face", "face_too_small", "unusable", "error")
"""Why a file was refused, from the most to the least basic."""


@dataclass(frozen=True)
class Source:
    """One file found under the input folder."""

    path: Path
    """Where it is."""
    rel: str
    """Its path under the input folder, with ``/`` separators: the key of the journal."""
    size: int
    """Bytes."""
    mtime_ns: int
    """Modification time, ns (with ``size``: has the file changed since it was prepared?)."""

    @property
    def is_image_name(self) -> bool:
        return self.rel.lower().endswith(IMAGE_SUFFIXES)


def natural_key(text: str) -> list:
    """Sort key that orders ``2.jpg`` before ``10.jpg``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)]


def list_sources(*, root: Path, exclude: Path | None = None) -> list[Source]:
    """Every file under ``root``, recursively, in natural order of its path (any ending: the caller
    refuses those that are not images). Hidden files and folders (``.name``) are skipped, and so is
    ``exclude`` (the output folder, when it lies inside ``root``)."""
    root = Path(root).resolve()
    skip = None if exclude is None else Path(exclude).resolve()
    found = []
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not d.startswith(".") and (skip is None or (here / d).resolve() != skip)]
        for name in names:
            path = here / name
            if name.startswith(".") or not path.is_file():
                continue
            stat = path.stat()
            found.append(Source(path=path, rel=path.relative_to(root).as_posix(), size=stat.st_size,
                                mtime_ns=stat.st_mtime_ns))
    return sorted(found, key=lambda s: natural_key(s.rel))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def output_name(*, rel: str) -> str:
    """The PNG name of the file at ``rel`` (its path under the input folder): readable, stable and
    unique (a hash of the whole path ends it)."""
    stem = rel.rsplit(".", 1)[0] if "." in rel.rsplit("/", 1)[-1] else rel
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", stem.replace("/", "__")).strip("._") or "image"
    return f"{slug[:60]}_{_digest(rel)[:10]}.png"


def in_test_split(*, rel: str, fraction: float) -> bool:
    """Whether the file at ``rel`` belongs to the held-out split holding ``fraction`` of the files:
    decided by a hash of its file name alone (not its folder), so it does not depend on how the
    input folder was given, nor on which other files are there."""
    return int(_digest("split:" + rel.rsplit("/", 1)[-1])[:8], 16) / 16 ** 8 < fraction


def rejection(error: Exception, *, path: Path) -> tuple[str, str]:
    """(kind, reason) of a file that could not be prepared: a kind of ``REJECT_KINDS`` and the
    error's message without the file's path in front."""
    message = str(error)
    for prefix in (f"{path}: ", f"{path.name}: "):
        message = message.removeprefix(prefix)
    if isinstance(error, faces.NoFaceError):
        return "no_face", message
    if not isinstance(error, faces.PhotoError):
        return "error", f"{type(error).__name__}: {message}"
    if "not an image" in message:
        return "not_image", message
    if "too small" in message:
        return "too_small", message
    if any(word in message for word in ("corrupt", "cannot read", "too many pixels", "no such file")):
        return "unreadable", message
    return "unusable", message


def not_an_image(source: Source) -> tuple[str, str]:
    """(kind, reason) of a file whose name does not end like an image."""
    ending = Path(source.rel).suffix or "no ending"
    return "not_image", f"not an image file name ({ending}); images end in {', '.join(IMAGE_SUFFIXES)}"
