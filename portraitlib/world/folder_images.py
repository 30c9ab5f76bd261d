"""An EG3D-layout folder read on demand: the paper's photo sets stay on disk as uint8 PNGs.

    photos = FolderImages(folder, threads=4).to(device)
    len(photos), photos.shape            # N, (N, 3, R, R): from dataset.json and the first image
    x = photos[torch.tensor([3, 7])]     # (2, 3, R, R) float in [0, 1] on ``device``, read now
    x = photos[0:64]                     # slices too (encoding a whole set batch by batch)

Every training loop draws its batch with ``device.draw_batch(data, n, rng)``, i.e. ``data[idx]``,
so a ``FolderImages`` stands wherever a tensor of photos does and memory no longer grows with the
data set (28K photos at 512 px are 88 GB as float32). A batch is decoded by a pool of threads
(PNG decoding releases the GIL). A torch ``DataLoader`` is not used: the loops draw each batch's
indices from the run's generator inside the step (that is what makes a resumed run bit-identical),
and a DataLoader's sampler would have to know them ahead.
"""
from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from portraitlib.world.datasets import eg3d_labels


class FolderImages:
    """The images of an EG3D-layout folder, read when indexed; (N, 3, R, R) float in [0, 1]."""

    def __init__(self, folder: Path, *, threads: int = 4, device: torch.device | str = "cpu",
                 size: int | None = None):
        self.folder, self.size = Path(folder), size
        self.labels, self.names = eg3d_labels(self.folder)
        """(N, 25) labels and the N file names, from ``dataset.json``."""
        if not self.names:
            raise ValueError(f"{self.folder / 'dataset.json'} lists no images")
        self._stored = self._read(0).shape[:2]
        """(H, W) of the files; batches come out at ``size`` x ``size`` when it is given."""
        self.threads = threads
        self.device = torch.device(device)
        self._pool = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None

    def __len__(self) -> int:
        return len(self.names)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), 3, *((self.size, self.size) if self.size else self._stored)))

    def to(self, device: torch.device | str) -> "FolderImages":
        """The same folder, indexed onto ``device`` (its listing and thread pool shared, not re-read)."""
        return self._with(device=torch.device(device))

    def resized(self, size: int) -> "FolderImages":
        """The same folder, each batch resized (bilinear, antialiased) to ``size`` x ``size`` as it is read."""
        return self._with(size=size)

    def _with(self, **changes) -> "FolderImages":
        other = copy.copy(self)
        other.__dict__.update(changes)
        return other

    def _read(self, i: int) -> np.ndarray:
        path = self.folder / self.names[i]
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise OSError(f"cannot read {path} (listed in dataset.json): {exc}") from exc
        if hasattr(self, "_stored") and pixels.shape[:2] != self._stored:
            raise ValueError(f"{path} is {pixels.shape[1]}x{pixels.shape[0]}, the folder's first image "
                             f"{self._stored[1]}x{self._stored[0]}: one folder holds one size")
        return pixels

    def __getitem__(self, index) -> torch.Tensor:
        """Rows ``index`` (an int, a slice, or indices on any device) as float (B, 3, R, R) on the device."""
        if isinstance(index, slice):
            rows = list(range(len(self)))[index]
        elif isinstance(index, int):
            return self[[index]][0]
        else:
            rows = torch.as_tensor(index).reshape(-1).tolist()
        if any(not -len(self) <= i < len(self) for i in rows):
            raise IndexError(f"index out of range for {len(self)} images in {self.folder}")
        rows = [i % len(self) for i in rows]
        arrays = list(self._pool.map(self._read, rows)) if self._pool and len(rows) > 1 else map(self._read, rows)
        batch = torch.from_numpy(np.stack(list(arrays))) if rows else torch.zeros(0, *self._stored, 3, dtype=torch.uint8)
        batch = batch.to(self.device).permute(0, 3, 1, 2).float() / 255
        if self.size and batch.shape[-2:] != (self.size, self.size):
            batch = F.interpolate(batch, size=(self.size, self.size), mode="bilinear", antialias=True,
                                  align_corners=False)
        return batch

    def __repr__(self) -> str:
        return f"FolderImages({self.folder.name!r}, n={len(self)}, shape={tuple(self.shape)}, device={self.device})"


def mean_image(images: torch.Tensor | FolderImages, *, batch: int = 256) -> torch.Tensor:
    """The mean image (3, R, R) of a tensor of images (N, 3, R, R) or a folder, one batch at a time."""
    total = None
    for i in range(0, len(images), batch):
        part = images[i:i + batch].sum(0, dtype=torch.float64)
        total = part if total is None else total + part
    return (total / len(images)).float()
