"""Identities of the synthetic head world.

An identity is a latent ``z`` (N, LATENT_DIM) drawn from a standard normal; a fixed transform
(the normal CDF, then a range or palette per parameter) turns it into named head parameters, so
every identity has a latent and nearby latents give similar heads.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

# (name, low, high): continuous parameters as low + (high - low) * Phi(z).
RANGES: tuple[tuple[str, float, float], ...] = (
    ("head_width", 0.90, 1.10), ("head_height", 0.93, 1.07), ("head_depth", 0.93, 1.07),
    ("jaw_width", 0.82, 1.12), ("chin_length", 0.80, 1.20),
    ("nose_length", 0.80, 1.25), ("nose_width", 0.80, 1.30), ("nose_protrusion", 0.80, 1.25),
    ("ear_size", 0.80, 1.25), ("eye_size", 0.90, 1.15), ("eye_spacing", 0.92, 1.08),
    ("gaze_x", -0.30, 0.30), ("gaze_y", -0.15, 0.15), ("brow_thickness", 0.70, 1.40),
    ("brow_height", 0.85, 1.15), ("lip_fullness", 0.70, 1.40), ("mouth_width", 0.85, 1.15),
    ("hair_length", 0.0, 1.0), ("hair_volume", 0.90, 1.15),
    ("skin_tone", 0.0, 1.0), ("hair_colour", 0.0, 1.0), ("iris_colour", 0.0, 1.0),
    ("lip_colour", 0.0, 1.0), ("hat_colour", 0.0, 1.0),
)
# (name, probability): binary accessories, present when Phi(z) > 1 - probability.
ACCESSORIES: tuple[tuple[str, float], ...] = (("glasses", 0.2), ("hat", 0.12))
LATENT_DIM = len(RANGES) + len(ACCESSORIES)
"""Length of an identity's latent."""

SKIN_PALETTE = torch.tensor([[0.98, 0.84, 0.74], [0.92, 0.72, 0.58], [0.78, 0.56, 0.40],
                             [0.55, 0.37, 0.25], [0.36, 0.23, 0.15]])
HAIR_PALETTE = torch.tensor([[0.08, 0.06, 0.05], [0.30, 0.18, 0.10], [0.55, 0.35, 0.18],
                             [0.85, 0.68, 0.40], [0.65, 0.25, 0.10], [0.62, 0.62, 0.62]])
IRIS_PALETTE = torch.tensor([[0.30, 0.17, 0.08], [0.45, 0.30, 0.12], [0.25, 0.45, 0.20],
                             [0.25, 0.45, 0.75], [0.45, 0.55, 0.60]])
LIP_PALETTE = torch.tensor([[0.75, 0.40, 0.38], [0.70, 0.30, 0.30], [0.55, 0.30, 0.28], [0.80, 0.50, 0.50]])


def palette(colours: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """Colours (N, 3) interpolated along a palette (K, 3) at positions (N,) in [0, 1]."""
    scaled = position.clamp(0, 1) * (len(colours) - 1)
    low = scaled.floor().long().clamp(max=len(colours) - 2)
    frac = (scaled - low).unsqueeze(-1)
    colours = colours.to(position.device)
    return colours[low] * (1 - frac) + colours[low + 1] * frac


def hue_colour(hue: torch.Tensor, *, saturation: float = 0.7, value: float = 0.75) -> torch.Tensor:
    """RGB (N, 3) of hues (N,) in [0, 1]."""
    k = (torch.tensor([5.0, 3.0, 1.0], device=hue.device) + hue.unsqueeze(-1) * 6) % 6
    return value - value * saturation * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


@dataclass
class HeadParams:
    """Parameters of N heads; each field a tensor (N,). Shape multipliers are 1 for an average
    head; colours are palette positions in [0, 1]; accessories are 0 or 1."""

    head_width: torch.Tensor
    head_height: torch.Tensor
    head_depth: torch.Tensor
    jaw_width: torch.Tensor
    chin_length: torch.Tensor
    nose_length: torch.Tensor
    nose_width: torch.Tensor
    nose_protrusion: torch.Tensor
    ear_size: torch.Tensor
    eye_size: torch.Tensor
    eye_spacing: torch.Tensor
    gaze_x: torch.Tensor
    gaze_y: torch.Tensor
    brow_thickness: torch.Tensor
    brow_height: torch.Tensor
    lip_fullness: torch.Tensor
    mouth_width: torch.Tensor
    hair_length: torch.Tensor
    hair_volume: torch.Tensor
    skin_tone: torch.Tensor
    hair_colour: torch.Tensor
    iris_colour: torch.Tensor
    lip_colour: torch.Tensor
    hat_colour: torch.Tensor
    glasses: torch.Tensor
    hat: torch.Tensor

    def __len__(self) -> int:
        return len(self.head_width)

    def replace(self, **changes: torch.Tensor) -> "HeadParams":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = set(changes) - set(values)
        if unknown:
            raise ValueError(f"unknown head parameter(s) {sorted(unknown)}; valid: {sorted(values)}")
        return HeadParams(**{**values, **changes})

    def index(self, idx) -> "HeadParams":
        return HeadParams(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def params_from_latent(z: torch.Tensor) -> HeadParams:
    """Head parameters of latents ``z`` (N, LATENT_DIM)."""
    if z.ndim != 2 or z.shape[1] != LATENT_DIM:
        raise ValueError(f"identity latents must have shape (N, {LATENT_DIM}), got {tuple(z.shape)}")
    u = torch.special.ndtr(z.float())
    values = {name: low + (high - low) * u[:, i] for i, (name, low, high) in enumerate(RANGES)}
    for j, (name, probability) in enumerate(ACCESSORIES):
        values[name] = (u[:, len(RANGES) + j] > 1 - probability).float()
    return HeadParams(**values)


def sample_latents(n: int, *, generator: torch.Generator) -> torch.Tensor:
    """(n, LATENT_DIM) standard-normal identity latents."""
    return torch.randn(n, LATENT_DIM, generator=generator, device=generator.device)


ACCESSORY_ON, ACCESSORY_OFF = 4.0, -4.0
"""Latent values that switch an accessory on (Phi > 0.9999) or off, whatever its probability."""


def latent_column(name: str) -> int:
    """Column of a named parameter (``RANGES``) or accessory (``ACCESSORIES``) in an identity's latent."""
    names = [n for n, _, _ in RANGES] + [n for n, _ in ACCESSORIES]
    if name not in names:
        raise ValueError(f"unknown identity factor {name!r}; valid: {names}")
    return names.index(name)


def with_accessory(latents: torch.Tensor, name: str, present: bool | torch.Tensor) -> torch.Tensor:
    """Latents (N, LATENT_DIM) with accessory ``name`` on or off (``present``: one bool or (N,) bools);
    nothing else changes."""
    out = latents.clone()
    on = torch.as_tensor(present, device=latents.device)
    out[:, latent_column(name)] = torch.where(on, ACCESSORY_ON, ACCESSORY_OFF).to(latents.dtype)
    return out


def hair_colour_entry(latents: torch.Tensor) -> torch.Tensor:
    """The ``HAIR_PALETTE`` entry (N,) nearest each identity's hair colour."""
    position = torch.special.ndtr(latents[:, latent_column("hair_colour")].float())
    return (position * (len(HAIR_PALETTE) - 1)).round().long()


def with_hair_colour(latents: torch.Tensor, entry: int | torch.Tensor) -> torch.Tensor:
    """Latents (N, LATENT_DIM) whose hair colour is ``HAIR_PALETTE`` entry ``entry`` (one index or
    (N,) indices; the end entries sit just inside the palette); nothing else changes."""
    out = latents.clone()
    position = torch.as_tensor(entry, device=latents.device).float() / (len(HAIR_PALETTE) - 1)
    out[:, latent_column("hair_colour")] = torch.special.ndtri(position.clamp(0.02, 0.98)).to(latents.dtype)
    return out
