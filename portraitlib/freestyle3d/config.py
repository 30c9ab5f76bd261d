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
class I2TConfig:
    """The image-to-triplane network H (Sec. 3.2) and its two trainings (Eq. 4; Eq. 5-7)."""

    width: int = 64
    """Channels of the style encoder and of the modulation layers."""
    code_channels: int = 64
    """c: channels of the style code w_s."""
    code_size: int = 16
    """k: w_s is c x k x k (the paper: 32 at 512 px); the input image halves down to it."""
    layers: int = 7
    """SMLs: modulation layers (the paper: 7), doubling the size every second layer up to the planes'."""
    pretrain_pool: int = 1024
    """Eq. (4): samples of the 3D GAN (front view, planes) H is pretrained on."""
    pretrain_steps: int = 2000
    """Eq. (4): pretraining steps (the paper: 100K)."""
    batch: int = 8
    """Images per step (pretraining) and views per step (fine-tuning, of one identity)."""
    lr: float = 1e-3
    """Adam learning rate of the pretraining."""
    finetune_steps: int = 300
    """Eq. (5)-(7): fine-tuning steps on D_s."""
    finetune_lr: float = 5e-4
    """Adam learning rate of the fine-tuning."""
    rec_weight: float = 10.0
    """lambda_rec of Eq. (7) (the paper: 10)."""
    dr_weight: float = 0.2
    """lambda_dr of Eq. (7) (the paper: 0.2)."""
    dr_multiplicative: bool = True
    """Eq. (6)'s nudge: x + delta * x as printed (True) or EG3D code's x + delta (False)."""


@dataclass(frozen=True)
class FreeStyleConfig:
    """Alg. 1's settings (the paper's values by default) and the editor's."""

    editor: EditorConfig = field(default_factory=EditorConfig)
    """The editor: see :class:`EditorConfig`."""
    i2t: I2TConfig = field(default_factory=I2TConfig)
    """The image-to-triplane network: see :class:`I2TConfig`."""
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
