"""Generator configurations: the official ffhq512-128 one and the small ones of the CPU profiles."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TriPlaneConfig:
    """Sizes of a tri-plane generator (EG3D)."""

    z_dim: int = 512
    """Latent size."""
    w_dim: int = 512
    """Intermediate latent size."""
    c_dim: int = 25
    """Camera label size (cam2world + intrinsics)."""
    mapping_layers: int = 2
    """FC layers of the mapping network."""
    plane_resolution: int = 256
    """Side of each feature plane (the backbone's output resolution)."""
    plane_channels: int = 32
    """Channels per plane (the backbone outputs 3 x this)."""
    channel_base: int = 32768
    """Backbone channels at resolution r: min(channel_base // r, channel_max)."""
    channel_max: int = 512
    """Cap on backbone channels."""
    decoder_hidden: int = 64
    """Hidden width of the OSG decoder."""
    neural_rendering_resolution: int = 128
    """Side of the volume-rendered raw image (rays per side)."""
    img_resolution: int = 512
    """Side of the super-resolved output image."""
    sr_input_resolution: int = 128
    """Side the super-resolution head resizes its inputs to: img/4 (official: block0 upsamples
    2x, then block1) or img/2 (block0 keeps the size, only block1 upsamples)."""
    sr_channels: tuple[int, int] = (256, 128)
    """Channels of the super-resolution blocks (block0 at img/2, block1 at img)."""
    sr_conv_clamp: float | None = 256.0
    """Clamp of the super-resolution convs' outputs (the official fp16 head's 256, kept in fp32)."""
    coarse_samples: int = 48
    """Stratified samples per ray."""
    fine_samples: int = 48
    """Importance samples per ray."""
    ray_start: float = 2.25
    """Near bound of the rays (distance from the camera)."""
    ray_end: float = 3.3
    """Far bound of the rays."""
    box_warp: float = 1.0
    """Side of the cube the planes cover, centred at the origin."""
    plane_layout: str = "official"
    """``official``: (x,y), (x,z), (z,x) as the released weights need; ``corrected``: (x,y), (x,z), (y,z)."""
    c_scale: float = 1.0
    """Scale of the camera label fed to the mapping (generator pose conditioning)."""
    mapping_lr_multiplier: float = 0.01
    """Learning-rate multiplier of the mapping's FC layers (StyleGAN2's 0.01)."""
    normalize_z: bool = True
    """Whether the mapping divides z by its RMS (StyleGAN2's; a world code is taken as it is)."""
    z_skip: bool = False
    """Not in the official network: z is added to the first z_dim numbers of w (``MappingNetwork``)."""
    plane_head: bool = False
    """Not in the official network: a direct linear path from w to the planes beside the synthesis
    network (planes += A w, A zero at initialisation). A constant input modulated by w learns the
    conditional part of the planes slowly; A learns each identity's planes in minutes on a CPU."""

    @property
    def num_sr_ws(self) -> int:
        return 3

    def to_dict(self) -> dict:
        return asdict(self)


PAPER = TriPlaneConfig()
"""Exactly the official ffhq512-128 generator."""

MINI = TriPlaneConfig(z_dim=31, w_dim=128, plane_resolution=32, plane_channels=16, channel_base=2048,
                      channel_max=64, decoder_hidden=32, neural_rendering_resolution=32, img_resolution=64,
                      sr_input_resolution=32, sr_channels=(32, 16), coarse_samples=24, fine_samples=24,
                      plane_layout="corrected", c_scale=0.0, mapping_lr_multiplier=1.0, normalize_z=False, z_skip=True,
                      plane_head=True)
"""The mini profile's G_world: 64 px output from 32 x 32 rays, narrow convs (CPU budget). How it
differs from the official network: z is the head world's code (identity latent + photo conditions,
``pretrain.world.CODE_DIM`` = 31 numbers, no free noise, not normalised, and added to w as it is),
the mapping learns at the full rate and reads no camera (a world identity does not depend on the
camera, so EG3D's pose conditioning has nothing to model), and a
direct linear path from w adds to the planes (``plane_head``): issue #26's probes on two CPU cores."""

SMOKE = TriPlaneConfig(z_dim=32, w_dim=32, plane_resolution=16, plane_channels=8, channel_base=256,
                       channel_max=32, decoder_hidden=16, neural_rendering_resolution=16, img_resolution=32,
                       sr_input_resolution=16, sr_channels=(16, 8), coarse_samples=12, fine_samples=12,
                       plane_layout="corrected")
"""The smoke profile's generator: every code path at the smallest sizes."""


def named(name: str) -> TriPlaneConfig:
    """The configuration a profile names: ``smoke``, ``mini`` or ``paper``."""
    choices = {"smoke": SMOKE, "mini": MINI, "paper": PAPER}
    if name not in choices:
        raise ValueError(f"unknown generator configuration {name!r}; valid: {sorted(choices)}")
    return choices[name]
