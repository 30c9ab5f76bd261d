"""An artefact cache keyed by profile + seed + config, with atomic writes.

Artefacts (trained generators, encoders, data sets) are dicts of tensors and plain values saved
with ``torch.save`` and read back with ``torch.load(weights_only=True)``, which refuses to run
code embedded in a file.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch

from portraitlib.distributed import barrier, is_writer
from portraitlib.paths import cache_dir


def _file_mode() -> int:
    """What a plainly created file would get (0666 less the umask); mkstemp's files are 0600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def remove_orphans(path: Path) -> None:
    """Remove what killed writes of ``path`` left: its ``.<name>.*.tmp`` files and folders."""
    for orphan in path.parent.glob(f".{path.name}.*.tmp"):
        if orphan.is_dir():
            shutil.rmtree(orphan, ignore_errors=True)
        else:
            orphan.unlink(missing_ok=True)


def _atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """``write(handle)`` into a temporary file beside ``path`` (after removing the orphans of
    earlier killed writes), fsync, then ``os.replace``: a reader sees the old file or the new
    one, never half of one. In a data-parallel run only rank 0 writes."""
    if not is_writer():
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably (see :func:`_atomic_write`)."""
    _atomic_write(path, lambda handle: handle.write(data))


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` atomically and durably (see :func:`_atomic_write`)."""
    _atomic_write(path, lambda handle: torch.save(obj, handle))


def safe_torch_load(path: Path) -> Any:
    """Load a file written by :func:`atomic_torch_save` without executing any code in it."""
    return torch.load(path, map_location="cpu", weights_only=True)


def plain_config(config: dict) -> dict:
    """``config`` as the JSON its key is made of: plain dicts, lists, strings and numbers (an enum
    becomes its value), so a stored artefact loads without any of the study's own classes."""
    return json.loads(json.dumps(config, sort_keys=True, default=str))


def config_key(config: dict) -> str:
    """A stable 16-hex-digit key of a JSON-able config."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tensor_digest(*tensors: torch.Tensor) -> str:
    """A 16-hex-digit digest of tensors' values (as float32 on the CPU), for a cache key that must
    change with a network's weights or a data set, e.g. ``tensor_digest(*net.state_dict().values())``."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class MissingArtefactError(FileNotFoundError):
    """A read-only cache was asked for an artefact that has not been built yet."""


class ArtifactCache:
    """Artefacts of one profile and seed, each under ``<root>/<profile>/seed<seed>/<name>-<key>.pt``
    (``seed<seed>-<variant>/`` for a ``variant`` such as bf16 training, whose networks differ).

    A ``read_only`` cache never trains or writes: asking it for an artefact it lacks raises
    :class:`MissingArtefactError` (the command line uses it, so a missing style is an error, not an
    hour of training)."""

    def __init__(self, *, profile: str, seed: int, root: Path | None = None, read_only: bool = False,
                 variant: str = ""):
        self.profile = profile
        self.seed = seed
        self.folder_name = f"seed{seed}-{variant}" if variant else f"seed{seed}"
        self.root = Path(root) if root is not None else cache_dir()
        self.read_only = read_only

    def _missing(self, name: str, path: Path) -> MissingArtefactError:
        return MissingArtefactError(f"artefact {name!r} of profile {self.profile!r} (seed {self.seed}) has not been "
                                    f"built: {path} is missing")

    def path(self, name: str, config: dict) -> Path:
        key = config_key({"profile": self.profile, "seed": self.seed, "name": name, **config})
        return self.root / self.profile / self.folder_name / f"{name}-{key}.pt"

    def load(self, name: str, config: dict) -> dict | None:
        """The stored artefact, or ``None`` when absent."""
        path = self.path(name, config)
        return safe_torch_load(path) if path.exists() else None

    def save(self, name: str, config: dict, artefact: dict) -> Path:
        path = self.path(name, config)
        atomic_torch_save({"config": plain_config(config), **artefact}, path)
        return path

    def folder(self, name: str, config: dict, build: Callable[[Path], None]) -> Path:
        """A folder artefact (e.g. a data set in EG3D layout): built into a temporary folder by
        ``build(tmp)`` and renamed into place, so a half-written folder is never used."""
        final = self.path(name, config).with_suffix("")
        if final.is_dir():
            return final
        if self.read_only:
            raise self._missing(name, final)
        if not is_writer():  # rank 0 builds the folder; the others wait for it
            barrier()
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_orphans(final)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
        try:
            build(tmp)
            try:
                os.replace(tmp, final)
            except OSError:
                if not final.is_dir():
                    raise
                # another process built the same folder meanwhile: same key, same content; keep theirs
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        barrier()
        return final

    def resume_path(self, stage: str, config: dict) -> Path:
        """Where a training stage keeps its resumable state while it builds the artefact of ``config``."""
        return self.path(stage, config).with_suffix(".resume.pt")

    def get_or_build(self, name: str, config: dict, build: Callable[[], dict], *,
                     stages: tuple[str, ...] = ()) -> dict:
        """Load the artefact for ``config``, or build, save and return it; then drop the resumable
        states of ``stages`` (the artefact now holds what they were for)."""
        cached = self.load(name, config)
        if cached is None and self.read_only:
            raise self._missing(name, self.path(name, config))
        if cached is None:
            artefact = build()  # in a data-parallel run every rank trains; rank 0 saves
            self.save(name, config, artefact)
            barrier()
            cached = {"config": config, **artefact}
        for stage in stages if not self.read_only else ():
            self.resume_path(stage, config).unlink(missing_ok=True)
        return cached
