"""Figures shared by the notebooks."""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from PIL import Image


def image_grid(images: torch.Tensor, *, row_labels=None, col_labels=None, title: str | None = None,
               cell: float = 1.3, cmap: str | None = None, label_width: float | None = None):
    """A figure of images (rows, cols, C, H, W) with C = 3 (RGB in [0, 1]) or 1 (shown with ``cmap``).
    ``label_width`` (inches): row labels written horizontally in a margin that wide (for long,
    multi-line labels such as numbers), instead of vertically along the row."""
    rows, cols = images.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(cols * cell + (label_width or 0), rows * cell), squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            img = images[r, c].detach().cpu()
            if img.shape[0] == 1:
                ax.imshow(img[0], cmap=cmap or "viridis")
            else:
                ax.imshow(img.permute(1, 2, 0).clamp(0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            if row_labels is not None and c == 0:
                if label_width:
                    ax.set_ylabel(row_labels[r], fontsize=7, rotation=0, ha="right", va="center")
                else:
                    ax.set_ylabel(row_labels[r], fontsize=8)
            if col_labels is not None and r == 0:
                ax.set_title(col_labels[c], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def depth_rgb(depth: torch.Tensor, *, near: float, far: float, size: int | None = None) -> torch.Tensor:
    """Depth maps (N, 1, r, r) (ray distance) as grey images (N, 3, size, size) in [0, 1]: near is
    white, ``far`` and beyond black; nearest-neighbour upsampling keeps the raw pixels visible."""
    grey = ((far - depth) / (far - near)).clamp(0, 1)
    if size is not None and size != grey.shape[-1]:
        grey = torch.nn.functional.interpolate(grey, size=(size, size), mode="nearest")
    return grey.expand(-1, 3, -1, -1)


def to_pil(image: torch.Tensor) -> Image.Image:
    """An image (3, R, R) in [0, 1] as an 8-bit RGB PIL image."""
    return Image.fromarray((image.detach().permute(1, 2, 0).clamp(0, 1) * 255).round().byte().cpu().numpy())
