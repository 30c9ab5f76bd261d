"""Profiles: the one source of truth for sizes, steps and data sources.

Each profile is a YAML file in ``params/`` (``smoke``, ``mini``, ``paper``). It is loaded into the
typed dataclasses below; an unknown profile, an unknown key or a value outside its allowed set
raises :class:`ProfileError` naming the valid choices.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Literal

import yaml

from portraitlib.paths import params_dir

STYLES = ("cartoon", "oil_painting", "comic", "anime", "sculpture")
"""The five artistic styles of the study (the paper's five, with "anime" for its Sam Yang)."""


class ProfileError(ValueError):
    """A profile name, key or value that is not valid; the message lists the valid ones."""


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
    """Which styles the study trains; a subset of ``portraitlib.profiles.STYLES``."""
    trace_steps: int = 48
    """Sphere-tracing steps per pixel when rendering the world."""
    supersample: int = 1
    """Anti-aliasing: render at this multiple of ``image_size`` and average down."""
    pose_set_per_look: int = 300
    """Training images per look (real and each style) for the stylized-image pose regressor."""
    pose_epochs: int = 12
    """Training epochs of the pose regressor."""

    def __post_init__(self):
        bad = [s for s in self.styles if s not in STYLES]
        if bad:
            raise ProfileError(f"unknown style(s) {bad}; valid styles: {list(STYLES)}")
        for name in ("image_size", "n_train", "n_test", "n_exemplars", "trace_steps", "supersample",
                     "pose_set_per_look", "pose_epochs"):
            if getattr(self, name) <= 0:
                raise ProfileError(f"world.{name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class MetricsConfig:
    """Which perceptual and identity networks the profile may use."""

    lpips: Literal["alex", "alex_or_random"] = "alex"
    """``alex``: LPIPS with its real AlexNet trunk, error if the weights are absent.
    ``alex_or_random``: the real trunk when present, else the seeded random trunk, reported as
    ``lpips_rand`` everywhere."""


@dataclass(frozen=True)
class StylePriorConfig:
    """Sizes and steps of the 2D style prior (notebook 01): source S, encoders, S -> S_t, prior sets."""

    source_checkpoint: str = ""
    """Paper profile: path of the official StyleGAN2 FFHQ checkpoint (``.pkl``, or rosinality
    ``.pt``) that is S. Empty: train S on the world's real set."""
    z_dim: int = 64
    """Latent size of the world-trained S."""
    w_dim: int = 128
    """Intermediate latent size of the world-trained S."""
    channel_max: int = 128
    """Channel cap of the world-trained S and its discriminator."""
    mapping_layers: int = 2
    """Mapping-network depth of the world-trained S."""
    warm_start_steps: int = 600
    """Joint hierarchical-VAE steps that warm-start S (reconstruction of real photos)."""
    adversarial_steps: int = 300
    """StyleGAN2-recipe GAN steps after the warm start (the step with the best KID is kept)."""
    baseline_steps: int = 0
    """Pure adversarial steps from scratch for the warm-start comparison (0: skip it)."""
    encoder_steps: int = 400
    """Steps of each inversion encoder (hierarchical VAE and plain W+) on the frozen S."""
    transfer_steps: int = 200
    """Few-shot adversarial steps S -> S_t per style."""
    eval_every: int = 25
    """Steps between early-stopping evaluations (GAN phases)."""
    batch: int = 16
    """Images per step of S and the encoders."""
    transfer_batch: int = 8
    """Images per step of the few-shot transfer."""
    unpaired_per_style: int = 256
    """Unpaired samples S_t(z) added to each style prior set."""
    fake_latents: Literal["prior", "posterior"] = "prior"
    """Codes of the GAN fakes (S's adversarial phase, S -> S_t) and of the unpaired samples:
    ``prior``, the Gaussian prior (StyleGAN2; AgileGAN, whose inverted codes follow the prior);
    ``posterior``, the hierarchical VAE's codes of real photos, the unpaired ones mixing two
    photos (coarse layers from one, the rest from another): for a world-trained S whose prior
    samples are not yet faces."""

    def __post_init__(self):
        for name in ("z_dim", "w_dim", "channel_max", "mapping_layers", "encoder_steps", "transfer_steps",
                     "eval_every", "batch", "transfer_batch"):
            if getattr(self, name) <= 0:
                raise ProfileError(f"style_prior.{name} must be positive, got {getattr(self, name)}")
        for name in ("warm_start_steps", "adversarial_steps", "baseline_steps", "unpaired_per_style"):
            if getattr(self, name) < 0:
                raise ProfileError(f"style_prior.{name} must not be negative, got {getattr(self, name)}")


@dataclass(frozen=True)
class Profile:
    """A loaded profile: sizes, steps and data sources of one way of running the study."""

    name: str
    """Profile name (the YAML file's stem)."""
    description: str
    """One line on what the profile is for."""
    seed: int = 0
    """Seed that fixes every table on the CPU."""
    device: Literal["cpu", "auto"] = "cpu"
    """``cpu``, or ``auto`` for the first accelerator torch finds (else the CPU)."""
    data_source: Literal["world", "celebahq"] = "world"
    """``world``: the synthetic 3D head world; ``celebahq``: CelebA-HQ and official weights."""
    world: WorldConfig = field(default_factory=WorldConfig)
    """Synthetic world sizes (used when ``data_source`` is ``world``; also for checks)."""
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    """Metric backbones the profile allows."""
    style_prior: StylePriorConfig = field(default_factory=StylePriorConfig)
    """The 2D style prior (notebook 01)."""


def available_profiles() -> list[str]:
    """Names of the profiles found in ``params/``, sorted."""
    return sorted(p.stem for p in params_dir().glob("*.yaml"))


def load_profile(name: str) -> Profile:
    """Load ``params/<name>.yaml`` into a :class:`Profile`, validating every key and value."""
    valid = available_profiles()
    if name not in valid:
        raise ProfileError(f"unknown profile {name!r}; valid profiles: {', '.join(valid)}")
    raw = yaml.safe_load((params_dir() / f"{name}.yaml").read_text()) or {}
    if not isinstance(raw, dict):
        raise ProfileError(f"params/{name}.yaml must hold a mapping, not {type(raw).__name__}")
    return _build(Profile, {"name": name, **raw}, where=f"params/{name}.yaml")


def _build(cls, raw: dict, *, where: str):
    """Build dataclass ``cls`` from a mapping, checking keys, types and allowed values."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ProfileError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {key: _convert(hints[key], value, where=f"{where}: {key}") for key, value in raw.items()}
    missing = [f.name for f in fields.values() if f.name not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ProfileError(f"{where}: missing required key(s) {missing}")
    return cls(**kwargs)


def _convert(hint, value, *, where: str):
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ProfileError(f"{where} must be a mapping")
        return _build(hint, value, where=where)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ProfileError(f"{where}: {value!r} is not valid; valid values: {list(choices)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ProfileError(f"{where} must be a list")
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(hint, type) and not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ProfileError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value
