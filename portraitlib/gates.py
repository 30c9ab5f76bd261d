"""The gates a stage's outputs must pass before a claim judged on them counts (issue #26).

    rows = gates.check(results)   # one Verdict per gate and look: value, bound, met (None: not recorded)

A gate reads one :mod:`portraitlib.quality` measure of one stage, as the notebooks record it under
``results["quality"][stage][look]``. The stages are :class:`Stage` (the notebooks key their records
with it); a gated stage a run did not record is reported as not recorded, never as met.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Stage(str, Enum):
    """The gated stages, by the key their notebook records them under."""

    S_WORLD = "S_world samples"
    """Notebook 01: S's samples z ~ N(0, I), against the world's photo of their code where S is world-coded."""
    X_S = "style prior x_s"
    """Notebook 01: the style prior's stylized photos x_s = S_t(E(x)), one look per style."""
    G_WORLD = "G_world samples"
    """Notebook 02: G's samples at the gate yaws, against the world's render of their code where G is world-coded."""
    W_PLUS_ENCODER = "W+ encoder with L_cyc: G(E(x)) at the photo's camera"
    """Notebook 04: the 17-code W+ encoder trained with the multi-view cycle loss, its inversions of held-out photos."""
    OURS_VIEWS = "ours, L_prior + L_guide: G_t(E(x)) views"
    """Notebook 05: AgileGAN3D's stylized 3D views of held-out photos, one look per style."""
    FREESTYLE_SET = "free-style 3D: Alg. 1's few-shot set D_s"
    """Notebook 09: the editor's fixed-noise edits of a 3D GAN identity's views, one look per style."""
    FREESTYLE_I2T = "free-style 3D: I2T renders G*(I_f, v)"
    """Notebook 09: the fine-tuned I2T's renders of held-out identities at held-out cameras, one look per style."""
    AVATAR_VIEWS = "3DAvatarGAN: G_t views of held-out identities"
    """Notebook 10: the adapted G_t's renders of held-out identities at the 2D set's cameras, one look per style."""
    MMFS_ONE_SHOT = "MMFS: one-shot stylizations of held-out photos"
    """Notebook 11: the decoder fine-tuned to one reference of each look (the held-out style too), on held-out photos."""


@dataclass(frozen=True)
class Gate:
    """A bound on one measure: ``value >= bound`` (``at_least``) or ``value <= bound``."""

    measure: str
    """A key of :func:`portraitlib.quality.measure` (``face_detection``, ``identification``, ...)."""
    bound: float
    """The threshold the measure must reach."""
    at_least: bool = True
    """True: the value must be at least the bound (fractions); False: at most (errors, distances)."""

    def met(self, value: float) -> bool:
        return value >= self.bound if self.at_least else value <= self.bound

    def __str__(self) -> str:
        return f"{'>=' if self.at_least else '<='} {self.bound:g}"


LOOK_STAGE_GATES = (Gate("face_detection", 0.90), Gate("look_accuracy", 0.90), Gate("identification", 0.70))
"""Stylized outputs of a photo: a face, in the intended look, of that photo's person."""

GATES: dict[Stage, tuple[Gate, ...]] = {
    Stage.S_WORLD: (Gate("face_detection", 0.95),),
    Stage.X_S: LOOK_STAGE_GATES,
    Stage.G_WORLD: (Gate("face_detection", 0.95), Gate("look_accuracy", 0.90), Gate("pose_error_deg", 5.0, False),
                    Gate("lpips_vgg_to_truth", 0.30, False), Gate("identification", 0.70)),
    Stage.W_PLUS_ENCODER: (Gate("identification", 0.90),),
    Stage.OURS_VIEWS: LOOK_STAGE_GATES,
    Stage.FREESTYLE_SET: (Gate("face_detection", 0.90), Gate("look_accuracy", 0.90)),
    Stage.FREESTYLE_I2T: (Gate("face_detection", 0.90), Gate("look_accuracy", 0.90)),
    Stage.AVATAR_VIEWS: LOOK_STAGE_GATES,
    Stage.MMFS_ONE_SHOT: LOOK_STAGE_GATES,
}
"""The gates of issue #26 (held-out identities), unchanged since #19; free-style 3D's of issue #27;
3DAvatarGAN's of issue #28; MMFS's (issue #29 names none) the stylized photos' bar of the others."""


@dataclass(frozen=True)
class Verdict:
    """One gate on one look of one stage."""

    notebook: str | None
    stage: Stage
    look: str | None
    gate: Gate
    value: float | None
    """The measured value; None when the run did not record it."""

    @property
    def met(self) -> bool | None:
        """True or False; None when nothing was recorded."""
        return None if self.value is None else self.gate.met(self.value)


def check(results: dict[str, dict]) -> list[Verdict]:
    """Every gate of :data:`GATES` against notebook ``results`` (name -> its JSON, whose ``values`` hold
    ``quality``): one verdict per gate and recorded look, or one not-recorded verdict per gate."""
    verdicts = []
    for stage, stage_gates in GATES.items():
        found = [(name, look, q) for name, r in results.items()
                 for look, q in r.get("values", {}).get("quality", {}).get(stage.value, {}).items()]
        for gate in stage_gates:
            verdicts += [Verdict(name, stage, look, gate, q.get(gate.measure)) for name, look, q in found] or [
                Verdict(None, stage, None, gate, None)]
    return verdicts


def section(results: dict[str, dict]) -> list[str]:
    """Markdown lines: the gates table and how many are met."""
    verdicts = check(results)
    words = {True: "met", False: "**NOT met**", None: "not recorded"}
    lines = ["## Gates", "",
             "Each stage's outputs against the gates of issue #26 (held-out identities). A claim judged on a stage "
             "that fails a gate is a check of the code path, not evidence about the method.", "",
             "| stage | look | measure | value | gate | verdict |", "|---|---|---|---|---|---|"]
    lines += [f"| {v.stage.value} | {v.look or ''} | {v.gate.measure} | "
              f"{'' if v.value is None else f'{v.value:.3f}'} | {v.gate} | {words[v.met]} |" for v in verdicts]
    counts = {k: sum(v.met is k for v in verdicts) for k in words}
    return lines + ["", f"{counts[True]} of {len(verdicts)} gates met, {counts[False]} not met, "
                        f"{counts[None]} not recorded.", ""]
