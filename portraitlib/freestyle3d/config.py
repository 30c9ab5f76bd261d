"""The profile section of the free-style 3D study (seed 001), ``freestyle:`` in params/*.yaml."""
from __future__ import annotations

from dataclasses import dataclass, field

from portraitlib.errors import ProfileError

PIX2PIX_HINT = ("download it with `huggingface-cli download timbrooks/instruct-pix2pix --local-dir <folder>` "
                "and set freestyle.editor.pretrained to that folder under weights/")
"""Where the paper profile's editor comes from (its missing-file errors say it)."""


@dataclass(frozen=True)
class EditorConfig:
    """The image editor T(phi, I, n, c) of Eq. (2): a folder of the real Ip2p, or a small one trained on the world."""

    pretrained: str = field(default="", metadata={"key": False})
    """A diffusers folder of ``timbrooks/instruct-pix2pix`` under weights/ (paper); empty: train one on the world."""
    pairs_per_style: int = 256
    """World training pairs per style: identities of their own split, each rendered real and in every style."""
    max_yaw: float = 20.0
    """Training views are near-frontal: |yaw| below this (deg), so the editor is view-inconsistent like the real one."""
    vae_channels: tuple[int, ...] = (32, 64, 64)
    """AutoencoderKL block widths; len - 1 halvings (64 px -> 16 x 16 latents with three)."""
    unet_channels: tuple[int, ...] = (64, 128, 128)
    """UNet2DConditionModel block widths (cross-attention in all but the last)."""
    text_width: int = 64
    """CLIPTextModel width (also the UNet's cross-attention width)."""
    text_layers: int = 2
    """CLIPTextModel layers."""
    vae_steps: int = 1500
    """AutoencoderKL training steps (L1 + perceptual + KL) on every training render."""
    steps: int = 4000
    """UNet and text encoder steps (the Ip2p objective, epsilon prediction)."""
    batch: int = 32
    """Training batch (both stages)."""
    lr: float = 1e-3
    """AdamW learning rate (both stages)."""
    drop: float = 0.05
    """Probability of dropping the instruction, the image, and both (each): classifier-free guidance."""

    def __post_init__(self):
        if not self.vae_channels or not self.unet_channels:
            raise ProfileError("freestyle.editor: vae_channels and unet_channels need at least one block each")


@dataclass(frozen=True)
class FreeStyleConfig:
    """Alg. 1's settings (the paper's values by default) and the editor's."""

    editor: EditorConfig = field(default_factory=EditorConfig)
    """The editor: see :class:`EditorConfig`."""
    views_per_axis: int = 10
    """i: Alg. 1 edits i x i views, pitch and yaw each uniform in +-30 deg (the paper: 10)."""
    identities: int = 1
    """Identities w per style of the 3D GAN Alg. 1 is run on (the paper: one); the units of the paired
    comparison of fixed against random noise."""
    tau: float = 0.9
    """Eq. (1): the DDPM noise level of n* = Add(E(I), n, tau), as a fraction of the training timesteps."""
    inference_steps: int = 20
    """DDIM steps of the editor."""
    text_guidance: float = 20.0
    """Ip2p's text guidance weight (the paper: 20)."""
    image_guidance: float = 1.5
    """Ip2p's image guidance weight (the paper: 1.5)."""
    decorative_prompt: str = "realistic, detail, 8k, photorealistic"
    """t_d, appended to the instruction (empty on the world, whose editor never read such words)."""
    negative_prompt: str = "unclear facial features, non-face objects, ugly, bad"
    """t_n, the negative prompt (empty on the world: the unconditional prompt)."""
