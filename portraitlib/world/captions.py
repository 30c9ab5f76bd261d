"""Captions of the world's renders, read off the true factors: the text a world CLIP learns from.

Every render's identity latent, camera and look are known, so its caption can be exact.
:func:`describe` turns them into words with the thresholds below; a factor in an ambiguous band
(a hair colour halfway between two palette entries, a yaw of 10 degrees) or invisible in the look
(colours of a monochrome sculpture, the gaze of eyes without irises) is left unsaid.
:func:`training_captions` phrases a description several ways: look words with attribute phrases,
free attribute phrases without a look, look-only phrases. The held-out look words
(:data:`HELD_OUT_LOOK_WORDS`, e.g. "a toon" for cartoon) never appear in a training caption, so
retrieval with them measures zero-shot transfer honestly.

Directions are in the viewer's frame: "turned to the left" means the face points to the image's
left, i.e. camera yaw > 0 (:mod:`portraitlib.cameras`); "eyes looking to the right" means an iris
turned toward world +x, the image's right in a frontal view.

Thresholds (head parameters from ``params_from_latent``, palette positions in [0, 1]):

- hair colour: position p sits 5p steps along ``HAIR_PALETTE``; named by the nearest entry
  (:data:`HAIR_COLOURS`) when within 0.3 steps of it (60% of heads), else unsaid;
- hair length: ``short`` below 0.3 (the head has no back hair there), ``long`` from 0.6;
- skin tone along ``SKIN_PALETTE``: ``light`` below 0.25, ``medium`` in 0.4-0.6, ``dark`` above 0.75;
- hat colour: the hue of ``hue_colour(hat_colour)`` named (:data:`HAT_COLOURS`) within 1/18 of a
  primary or secondary hue, else just "a hat";
- gaze: ``gaze_x`` beyond +-0.2 (of +-0.3); yaw: beyond +-15 degrees turned, within +-8 facing the
  camera; pitch: beyond +-10 degrees seen from above (camera above) or below.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

import torch

from portraitlib.world.identity import RANGES, params_from_latent
from portraitlib.world.styles import get_style

HAIR_COLOURS = ("black", "dark brown", "brown", "blond", "red", "grey")
"""Names of the six ``HAIR_PALETTE`` entries, in palette order."""
HAIR_TOLERANCE = 0.3
"""How far (in palette steps) a hair colour may sit from an entry and still be named by it."""
HAT_COLOURS = ("red", "yellow", "green", "teal", "blue", "purple")
"""Names of the hues k/6 of a hat."""
LOOK_WORDS: dict[str, tuple[str, ...]] = {
    "real": ("a photo", "a photograph"),
    "cartoon": ("a cartoon", "a cartoon drawing"),
    "oil_painting": ("an oil painting", "a painting"),
    "comic": ("a comic", "a comic book drawing"),
    "anime": ("an anime drawing", "an anime illustration"),
    "sculpture": ("a sculpture", "a stone sculpture"),
}
"""Noun phrases of each look in training captions (the first one in prompts)."""
HELD_OUT_LOOK_WORDS: dict[str, str] = {
    "real": "a snapshot", "cartoon": "a toon", "oil_painting": "a canvas", "comic": "a graphic novel",
    "anime": "a manga", "sculpture": "a statue",
}
"""A synonym of each look that no training caption contains: the zero-shot words."""
TEMPLATES: tuple[tuple[str, float], ...] = (
    ("{look} of a person with {attrs}, {pose}", 3.0),
    ("{look} of a person with {attrs}", 2.0),
    ("{look} showing {attrs}", 1.0),
    ("{look} of a person, {pose}", 1.0),
    ("{look} of a person", 1.0),
    ("a person with {attrs}", 1.5),
    ("a person {pose}", 0.5),
)
"""Training caption frames and their sampling weights; ``{attrs}`` lists attribute phrases,
``{pose}`` the camera's."""


class Facing(Enum):
    """Where the face points in the image (camera yaw)."""

    LEFT = "turned to the left"
    FRONT = "facing the camera"
    RIGHT = "turned to the right"


class Elevation(Enum):
    """Where the camera is (pitch)."""

    ABOVE = "seen from above"
    BELOW = "seen from below"


class Gaze(Enum):
    """Where the irises point (``gaze_x``)."""

    LEFT = "eyes looking to the left"
    RIGHT = "eyes looking to the right"


class Attribute(Enum):
    """The attributes whose text-to-image retrieval is measured (``portraitlib.clip.measures``)."""

    HAIR_COLOUR = "hair_colour"
    GLASSES = "glasses"
    FACING = "facing"


@dataclass(frozen=True)
class Description:
    """What can truly be said of one render; ``None`` where a factor is ambiguous or invisible."""

    look: str
    """``real`` or a style name."""
    hair_colour: str | None
    """One of :data:`HAIR_COLOURS`."""
    hair_length: str | None
    """``short`` or ``long``."""
    glasses: bool
    """Whether the head wears glasses."""
    hat: bool
    """Whether the head wears a hat."""
    hat_colour: str | None
    """One of :data:`HAT_COLOURS` (only with a hat)."""
    skin_tone: str | None
    """``light``, ``medium`` or ``dark``."""
    gaze: Gaze | None
    """Where the eyes look, when clearly sideways and visible."""
    facing: Facing | None
    """Where the face points in the image."""
    elevation: Elevation | None
    """Where the camera is, when clearly above or below."""


def _nearest(position: float, count: int, tolerance: float) -> int | None:
    """Index of the palette entry (of ``count``) nearest to ``position`` in [0, 1], if within
    ``tolerance`` steps."""
    steps = position * (count - 1)
    index = round(steps)
    return index if abs(steps - index) <= tolerance else None


def _hue_name(hue: float) -> str | None:
    """The name of a hue in [0, 1] within 1/18 of k/6 (a third of a sixth), else ``None``."""
    sixths = hue * 6
    return HAT_COLOURS[round(sixths) % 6] if abs(sixths - round(sixths)) <= 1 / 3 else None


def _skin(tone: float) -> str | None:
    if tone < 0.25:
        return "light"
    if 0.4 <= tone <= 0.6:
        return "medium"
    return "dark" if tone > 0.75 else None


def describe(latents: torch.Tensor, angles: torch.Tensor, look: str) -> list[Description]:
    """Descriptions of N renders: identity latents (N, LATENT_DIM) at cameras (yaw, pitch, roll)
    (N, 3) in degrees, in ``look``."""
    style = get_style(look)
    colours, irises = style.monochrome is None, style.iris
    heads = params_from_latent(latents.detach().cpu())
    out = []
    for i, (yaw, pitch) in enumerate(angles[:, :2].detach().cpu().tolist()):
        hair = _nearest(heads.hair_colour[i].item(), len(HAIR_COLOURS), HAIR_TOLERANCE)
        length = heads.hair_length[i].item()
        gaze_x = heads.gaze_x[i].item()
        hat = bool(heads.hat[i].item())
        out.append(Description(
            look=look,
            hair_colour=HAIR_COLOURS[hair] if colours and hair is not None else None,
            hair_length="short" if length < 0.3 else "long" if length >= 0.6 else None,
            glasses=bool(heads.glasses[i].item()),
            hat=hat,
            hat_colour=_hue_name(heads.hat_colour[i].item()) if hat and colours else None,
            skin_tone=_skin(heads.skin_tone[i].item()) if colours else None,
            gaze=(Gaze.RIGHT if gaze_x > 0.2 else Gaze.LEFT if gaze_x < -0.2 else None) if irises else None,
            facing=Facing.LEFT if yaw > 15 else Facing.RIGHT if yaw < -15 else Facing.FRONT if abs(yaw) < 8 else None,
            elevation=Elevation.ABOVE if pitch > 10 else Elevation.BELOW if pitch < -10 else None))
    return out


_GAZE_X = [name for name, _, _ in RANGES].index("gaze_x")


def mirror(latents: torch.Tensor, angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The latents (N, D) and angles (N, 3) of the horizontally mirrored renders: the gaze and the
    yaw and roll change sign (the head is symmetric), so ``describe`` of them captions the
    mirror images."""
    latents, angles = latents.clone(), angles.clone()
    latents[:, _GAZE_X] = -latents[:, _GAZE_X]
    angles[:, 0], angles[:, 2] = -angles[:, 0], -angles[:, 2]
    return latents, angles


def attribute_phrases(d: Description) -> list[str]:
    """Every attribute phrase true of ``d``, in a fixed order (e.g. "long red hair", "glasses"); absent
    accessories go unsaid, as in people's captions (contrastive models read "no glasses" as glasses)."""
    hair = " ".join(w for w in (d.hair_length, d.hair_colour) if w)
    phrases = [f"{hair} hair"] if hair else []
    if d.glasses:
        phrases.append("glasses")
    if d.hat:
        phrases.append(f"a {d.hat_colour} hat" if d.hat_colour else "a hat")
    if d.skin_tone:
        phrases.append(f"{d.skin_tone} skin")
    if d.gaze:
        phrases.append(d.gaze.value)
    return phrases


def pose_phrases(d: Description) -> list[str]:
    """The camera's phrases of ``d`` (e.g. "turned to the left", "seen from above")."""
    return [p.value for p in (d.facing, d.elevation) if p is not None]


def _join(phrases: list[str]) -> str:
    """ "a", "a and b", "a, b and c" ("" for none)."""
    return " and ".join(filter(None, (", ".join(phrases[:-1]), phrases[-1]))) if phrases else ""


def full_caption(d: Description) -> str:
    """The one caption saying everything true of ``d`` (first look words, every phrase): the text
    of a render's own CLIP score."""
    attrs, pose = attribute_phrases(d), pose_phrases(d)
    text = f"{LOOK_WORDS[d.look][0]} of a person" + (f" with {_join(attrs)}" if attrs else "")
    return f"{text}, {', '.join(pose)}" if pose else text


def _phrase(d: Description, attribute: Attribute) -> str | None:
    """The attribute phrase of ``d`` that names ``attribute`` (hair colour: its hair phrase), or None."""
    if attribute is Attribute.GLASSES:
        return "glasses" if d.glasses else None
    if attribute is Attribute.HAIR_COLOUR:
        return attribute_phrases(d)[0] if d.hair_colour or d.hair_length else None
    raise ValueError(f"{attribute} is a camera phrase, not an attribute phrase")


def training_captions(d: Description, *, k: int, rng: random.Random, named: tuple[Attribute, ...] = ()
                      ) -> list[str]:
    """``k`` captions of ``d``, each a frame of :data:`TEMPLATES` (drawn by weight among those whose
    slots ``d`` can fill) with a random look phrase and a random non-empty subset of the attribute
    phrases (each kept with probability 3/4) in random order; never a held-out look word.

    ``named`` (counterfactual training): a frame that lists attributes always says the phrases of
    these, so the captions of a render and of its counterfactual differ where the images do (a
    caption silent on the changed factor is true of both)."""
    attrs, pose = attribute_phrases(d), pose_phrases(d)
    must = [p for p in (_phrase(d, a) for a in named) if p]
    usable = [(t, w) for t, w in TEMPLATES if (pose or "{pose}" not in t) and (attrs or "{attrs}" not in t)]
    out = []
    for _ in range(k):
        template = rng.choices([t for t, _ in usable], weights=[w for _, w in usable])[0]
        chosen = must + [p for p in attrs if p not in must and rng.random() < 0.75]
        chosen = chosen or ([rng.choice(attrs)] if attrs else [])
        rng.shuffle(chosen)
        out.append(template.format(look=rng.choice(LOOK_WORDS[d.look]), attrs=_join(chosen),
                                   pose=", ".join(pose)))
    return out


def look_prompt(look: str, *, held_out: bool = False) -> str:
    """The query of a look: "a cartoon of a person" (``held_out``: "a toon of a person")."""
    words = HELD_OUT_LOOK_WORDS[look] if held_out else LOOK_WORDS[look][0]
    return f"{words} of a person"


ATTRIBUTE_VALUES: dict[Attribute, tuple] = {
    Attribute.HAIR_COLOUR: HAIR_COLOURS,
    Attribute.GLASSES: (True, False),
    Attribute.FACING: tuple(Facing),
}
"""The values each measured attribute takes, in the order of the retrieval candidates."""
ATTRIBUTE_QUERIES: dict[Attribute, tuple] = {**ATTRIBUTE_VALUES, Attribute.GLASSES: (True,)}
"""The values queried (a prefix of ``ATTRIBUTE_VALUES``): no query for the absence of glasses,
which captions never name."""


def attribute_prompt(attribute: Attribute, value) -> str:
    """The query of one attribute value of ``ATTRIBUTE_QUERIES``, e.g. "a person with red hair",
    "a person with glasses", "a person turned to the left" (training frames: "a person with
    {attrs}", "a person {pose}")."""
    if attribute is Attribute.HAIR_COLOUR:
        return f"a person with {value} hair"
    if attribute is Attribute.GLASSES:
        return "a person with glasses"
    return f"a person {value.value}"
