"""Settings of 3DAvatarGAN (seed 002) on the head world (notebook 10)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Avatar3DConfig:
    """The tri-plane analysis, the camera alignment and the adaptation runs (the paper's values
    where it gives them; the runs' length and lr are the study's ``transfer`` settings)."""

    swap_pairs: int = 16
    """Pairs of G's heads whose planes are swapped (Sec. 3.4)."""
    swap_yaws: tuple[float, ...] = (-20.0, 0.0, 20.0)
    """Cameras (yaw, degrees, pitch 0) each swap is rendered from."""
    shift_radius: float = 1.15
    """The 2D style set's cameras: orbit radius as a multiple of G's (the truth alignment should find)."""
    shift_pitch: float = 8.0
    """The 2D style set's cameras: degrees added to every pitch (the truth alignment should find)."""
    align_identities: int = 32
    """Identities in the 2D style set and in G's set the alignment compares (Sec. 3.1)."""
    align_evaluations: int = 40
    """Renders of G's set the Nelder-Mead search may make per style."""
    train_identities: int = 512
    """Identities (one view each) in each style's 2D training set (the paper: 100K samples of the 2D GAN)."""
    test_identities: int = 32
    """Held-out identities each adapted G_t is scored on, at the 2D set's true cameras."""
    steps: int | None = None
    """Steps of each adaptation run; None: the study's ``transfer.steps`` (AgileGAN3D's runs)."""
    freeze_plane_head: bool = True
    """Keep the mini G's direct path from w to the planes (``TriPlaneConfig.plane_head``, not in
    EG3D) as G_s has it during the adaptation; False: it trains too (on the mini profile its per-texel
    weights then learn a grid across the heads)."""
    tps_steps: int | None = None
    """Steps of each TPS run (Sec. 3.4, after G_t); None: the adaptation's."""
    tps_grid: int = 4
    """Control points per side of the TPS's grid on the front plane."""
    tps_max_offset: float = 0.25
    """Largest displacement of a control point, as a fraction of the plane's half-width."""
