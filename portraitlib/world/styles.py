"""Looks of the world: the realistic ``real`` look and the five artistic styles.

A :class:`StyleSpec` is data: geometry multipliers applied to a head's parameters (the way an
artist exaggerates) and appearance settings used by the shader. A new style is a new spec; no
code changes. Stylized renders exist for any identity and any camera: they are the ground truth
of 3D stylization.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal


from portraitlib.world.identity import HeadParams

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class StyleSpec:
    """How one look changes a head's shape and its rendering."""

    name: str
    """Style name, e.g. ``cartoon``."""
    geometry: dict[str, float] = field(default_factory=dict)
    """Multipliers of head parameters (names from ``HeadParams``), e.g. ``{"eye_size": 1.5}``."""
    saturation: float = 1.0
    """Colour saturation scale (0 greys everything)."""
    value: float = 1.0
    """Brightness scale of material colours."""
    tint: RGB = (1.0, 1.0, 1.0)
    """Colour mixed into every material colour, by ``tint_amount``."""
    tint_amount: float = 0.0
    """How much of ``tint`` to mix in, in [0, 1]."""
    monochrome: RGB | None = None
    """If set, every material (hair, eyes, lips...) takes this one colour, as in a sculpture."""
    iris: bool = True
    """Whether eyes show iris and pupil."""
    shading: Literal["smooth", "cel"] = "smooth"
    """``smooth`` Lambert shading or ``cel`` shading with ``cel_levels`` flat bands."""
    cel_levels: int = 3
    """Number of flat shading bands of ``cel`` shading."""
    ambient: float | None = None
    """Ambient light in [0, 1]; ``None`` keeps the scene's."""
    light: tuple[float, float] | None = None
    """Fixed light (azimuth, elevation) in degrees; ``None`` keeps the scene's light."""
    specular: float = 0.0
    """Strength of specular highlights."""
    texture: Literal["none", "brush", "stone", "halftone"] = "none"
    """Surface pattern anchored on the head in 3D (so it is consistent across views)."""
    texture_strength: float = 0.0
    """Contrast of the texture."""
    texture_scale: float = 1.0
    """Spatial frequency multiplier of the texture."""
    outline_px: float = 0.0
    """Width of ink outlines at 64 px (silhouettes, depth jumps, part boundaries); 0 for none."""
    outline_colour: RGB = (0.05, 0.05, 0.08)
    """Ink colour."""
    background: RGB | None = None
    """Flat background colour; ``None`` keeps the scene's background."""

    def apply_geometry(self, heads: HeadParams) -> HeadParams:
        """The heads as this style draws them."""
        unknown = sorted(set(self.geometry) - {f.name for f in fields(heads)})
        if unknown:
            raise ValueError(f"style {self.name!r}: unknown head parameter(s) {unknown}")
        return heads.replace(**{name: getattr(heads, name) * factor for name, factor in self.geometry.items()})


REAL = StyleSpec(name="real", specular=0.25)
"""The realistic look of the "real photo" set (scene light and background vary per image)."""

STYLE_SPECS: dict[str, StyleSpec] = {
    "cartoon": StyleSpec(
        name="cartoon",
        geometry={"eye_size": 1.45, "nose_length": 0.65, "nose_width": 0.75, "nose_protrusion": 0.6,
                  "head_width": 1.07, "head_height": 0.96, "jaw_width": 1.1, "chin_length": 0.75,
                  "hair_volume": 0.93, "ear_size": 1.1},
        saturation=1.5, value=1.08, shading="cel", cel_levels=3, ambient=0.45, light=(-25.0, 35.0),
        outline_px=0.5, background=(0.55, 0.78, 0.95)),
    "oil_painting": StyleSpec(
        name="oil_painting",
        geometry={"head_height": 1.05, "nose_length": 1.08, "chin_length": 1.1},
        saturation=0.65, value=0.9, tint=(0.62, 0.45, 0.25), tint_amount=0.25, ambient=0.3,
        light=(-50.0, 30.0), specular=0.1, texture="brush", texture_strength=0.22, texture_scale=1.0,
        background=(0.28, 0.22, 0.15)),
    "comic": StyleSpec(
        name="comic",
        geometry={"jaw_width": 1.15, "chin_length": 1.12, "brow_thickness": 1.6, "nose_protrusion": 1.1},
        saturation=1.3, shading="cel", cel_levels=2, ambient=0.4, light=(40.0, 40.0),
        texture="halftone", texture_strength=0.55, texture_scale=1.0, outline_px=1.0,
        background=(0.98, 0.88, 0.35)),
    "anime": StyleSpec(
        name="anime",
        geometry={"eye_size": 1.75, "nose_length": 0.5, "nose_width": 0.6, "nose_protrusion": 0.45,
                  "mouth_width": 0.75, "lip_fullness": 0.6, "jaw_width": 0.9, "chin_length": 1.05,
                  "hair_volume": 1.1, "brow_thickness": 0.7},
        saturation=0.85, value=1.12, tint=(1.0, 0.85, 0.9), tint_amount=0.15, shading="cel",
        cel_levels=2, ambient=0.6, light=(-20.0, 30.0), outline_px=0.5, outline_colour=(0.3, 0.2, 0.25),
        background=(0.93, 0.90, 0.96)),
    "sculpture": StyleSpec(
        name="sculpture",
        geometry={"nose_protrusion": 1.15, "jaw_width": 1.05, "brow_thickness": 1.2, "hair_volume": 1.03},
        monochrome=(0.78, 0.76, 0.72), iris=False, ambient=0.2, light=(-45.0, 45.0), specular=0.08,
        texture="stone", texture_strength=0.12, texture_scale=1.0, background=(0.16, 0.17, 0.2)),
}
"""The study's five styles (``anime`` stands for the paper's Sam Yang)."""


HELD_OUT_STYLES: dict[str, StyleSpec] = {
    "pop_art": StyleSpec(
        name="pop_art",
        geometry={"eye_size": 1.2, "lip_fullness": 1.35, "brow_thickness": 1.3},
        saturation=1.9, value=1.1, tint=(0.95, 0.2, 0.55), tint_amount=0.3, shading="cel", cel_levels=2,
        ambient=0.5, light=(30.0, 35.0), texture="halftone", texture_strength=0.4, texture_scale=0.6,
        outline_px=1.0, outline_colour=(0.1, 0.05, 0.2), background=(0.15, 0.8, 0.75)),
}
"""Looks no network of the study trains on: MMFS's test of one- and zero-shot stylization (seed 004's
Fig. 6 prompts "pop art"); the world CLIP has no word for them."""


def get_style(name: str) -> StyleSpec:
    """The look called ``name``: ``real``, one of the five styles or a held-out one."""
    if name == "real":
        return REAL
    spec = STYLE_SPECS.get(name) or HELD_OUT_STYLES.get(name)
    if spec is None:
        raise ValueError(f"unknown style {name!r}; valid: real, {', '.join(STYLE_SPECS)}, "
                         f"held out: {', '.join(HELD_OUT_STYLES)}")
    return spec
