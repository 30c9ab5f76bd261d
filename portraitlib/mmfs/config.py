"""Settings of MMFS (seed 004) on the head world, ``mmfs:`` in params/*.yaml (notebook 11)."""
from __future__ import annotations

from dataclasses import dataclass

from portraitlib.errors import ProfileError


@dataclass(frozen=True)
class MMFSConfig:
    """The encoder-decoder over S, its two trainings, the CLIP mapping and the guided fine-tunings
    (the paper's values where it gives them, at 1024 px and batch 8 on a V100)."""

    feature_resolution: int = 32
    """Side of S's feature map E predicts (the paper: 32 x 32 at 1024 px); S's blocks above it are D."""
    encoder_width: int = 64
    """Channels of E's first convolution (doubling at each halving, capped at 4x)."""
    batch: int = 8
    """Images per step of every training (the paper: 8)."""
    stage1_steps: int = 10_000
    """Eq. (1): steps of E against the frozen S (the paper: 10K)."""
    stage1_lr: float = 1e-3
    """Adam learning rate of Stages I and II (the paper: 0.001, betas 0.1 and 0.999)."""
    perceptual_weight: float = 4.0
    """lambda_perc of Eq. (1) and of the mapping's loss: D's block features, L1 (the paper: 4)."""
    stage2_steps: int = 90_000
    """Eqs. (2)-(5): steps of E, D and the mapping on the styles (the paper: 90K)."""
    structure_weight: float = 0.5
    """lambda_st of Eq. (5) (the paper: 0.5)."""
    structure_layer: int = 3
    """Which of the VGG16 trunk's five ReLU slices gives the tokens of the self-similarity S^l."""
    r1_gamma: float = 10.0
    """R1 weight of D in Stage II (StyleGAN2's 10 at 1024 px)."""
    ema_half_life: float = 5545.0
    """Images over which the EMA of E, D and the mapping halves (the paper: decay 0.999 per step of 8)."""
    style_images: int = 2000
    """Stylized renders per training style in Stage II's real set (the AAHQ stand-in), one view
    each of identities of their own."""
    eval_every: int = 1000
    """Stage II steps between KID evaluations (early stopping; 0: none)."""
    mapping_steps: int = 60_000
    """Eq. (6): steps of the CLIP mapping (the paper: 60K)."""
    mapping_lr: float = 2e-4
    """Adam learning rate of the mapping and of the guided fine-tunings (the paper: 0.0002, beta1 0.9)."""
    mapping_layers: int = 4
    """Transformer layers of the CLIP mapping (the paper: 4)."""
    mapping_heads: int = 8
    """Attention heads of the CLIP mapping (must divide the CLIP embedding's size)."""
    finetune_steps: int = 200
    """Eqs. (7)-(8): decoder steps of a zero- or one-shot fine-tuning (the paper: 200)."""
    finetune_ema_half_life: float = 552.0
    """Images over which the fine-tuning's EMA halves (the paper: decay 0.99 per step of 8)."""
    clip_weight: float = 1.0
    """lambda_c of Eq. (7) (not given in the paper)."""
    projection_weight: float = 1.0
    """lambda_proj of Eq. (8) (not given in the paper)."""
    token_layer: int = 3
    """Which intermediate of CLIP's image tower gives Eq. (8)'s tokens (open_clip's
    ``forward_intermediates``): 3 is ViT-B's 4th block (the paper); for the world CLIP's ResNet 0 is
    the stem and 1-4 its stages. Its positions must be fewer than its channels, or U U^T = I."""
    held_out_style: str = "pop_art"
    """A look of the world no training of MMFS sees (``world.styles.HELD_OUT_STYLES``): one- and zero-shot's test."""

    def __post_init__(self):
        if self.feature_resolution < 4 or self.feature_resolution & (self.feature_resolution - 1):
            raise ProfileError(f"mmfs.feature_resolution must be a power of two >= 4, got {self.feature_resolution}")
        if not 1 <= self.structure_layer <= 5:
            raise ProfileError(f"mmfs.structure_layer picks one of VGG16's five slices (1-5), got {self.structure_layer}")
