"""The head world's sizes (a profile's ``world`` section) and its styles.

Kept apart from :mod:`portraitlib.profiles` so that the world's data sets, whose cache keys hold the
code they run (``provenance.module_version``), are not rebuilt when a stage's settings change.
"""
from __future__ import annotations

from dataclasses import dataclass

from portraitlib.errors import ProfileError

STYLES = ("cartoon", "oil_painting", "comic", "anime", "sculpture")
"""The five artistic styles of the study (the paper's five, with "anime" for its Sam Yang)."""


@dataclass(frozen=True)
class WorldConfig:
    """Sizes of the synthetic 3D head world (data of the smoke and mini profiles)."""

    image_size: int = 64
    """Side of every rendered image, in pixels."""
    n_train: int = 256
    """Identities in the "real" training split (the CelebA-HQ stand-in)."""
    n_test: int = 32
    """Held-out identities in the "real" test split."""
    n_exemplars: int = 20
    """Unpaired exemplars per style (the paper's ~20)."""
    styles: tuple[str, ...] = STYLES
    """Which styles the study trains; a subset of ``STYLES``."""
    trace_steps: int = 48
    """Sphere-tracing steps per pixel when rendering the world."""
    supersample: int = 1
    """Anti-aliasing: render at this multiple of ``image_size`` and average down."""
    pose_set_per_look: int = 300
    """Training images per look (real and each style) for the stylized-image pose regressor."""
    pose_set_size: int = 64
    """Side of those renders, in pixels (at most ``image_size``). The pose regressor and the look
    classifier read 64 px and the world CLIP ``clip.image_size``: the paper's 1024-px world would
    render 256x the pixels for nothing."""
    pose_epochs: int = 12
    """Training epochs of the pose regressor."""
    look_epochs: int = 20
    """Training epochs of the look classifier (on the pose regressor's renders)."""

    def __post_init__(self):
        bad = [s for s in self.styles if s not in STYLES]
        if bad:
            raise ProfileError(f"unknown style(s) {bad}; valid styles: {list(STYLES)}")
        for name in ("image_size", "n_train", "n_test", "n_exemplars", "trace_steps", "supersample",
                     "pose_set_per_look", "pose_set_size", "pose_epochs", "look_epochs"):
            if getattr(self, name) <= 0:
                raise ProfileError(f"world.{name} must be positive, got {getattr(self, name)}")
