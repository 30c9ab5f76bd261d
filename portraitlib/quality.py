"""Do the networks work? Measures of a batch of generated images against what they were meant to be.

    q = quality.measure(images, labels=cameras, regressor=regressor, truth=true_renders,
                        identity_net=nets.identity, perceptual=lpips_vgg, look="cartoon", classifier=classifier)
    # {"n": 32, "face_detection": 0.97, "look_accuracy": 0.94, "pose_error_deg": 3.1, "identification": 0.94,
    #  "identity_distance": 0.21, "lpips_vgg_to_truth": 0.18}

Each measure needs only what it names, and a measure whose input is absent is left out:

- ``face_detection``: the fraction of images in which MediaPipe's face mesh finds a face (images
  upscaled to ``detect_size`` first: it is tuned for photos, not 64 px renders);
- ``pose_error_deg``: the mean angle between the camera the pose regressor sees and the intended one;
- ``identification``: the fraction of images whose nearest true render (identity distance) among
  all of ``truth`` is their own - identification among ``len(truth)`` identities - and
  ``identity_distance``, the mean distance to their own;
- ``<perceptual>_to_truth``: the mean perceptual distance to the true render;
- ``look_accuracy``: the fraction the look classifier (:mod:`portraitlib.look`) calls the intended look.

A :class:`Judge` holds the study's measuring networks, so a notebook records a stage's outputs in
one line: ``results["quality"]["G_world"] = {"real": study.judge(images, look="real", labels=cams)}``
(the report tabulates ``quality.<stage>.<look>.<measure>``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from portraitlib import cameras, faces
from portraitlib.look import look_accuracy


def image_landmarks(images: torch.Tensor, *, detect_size: int = 256) -> list[np.ndarray | None]:
    """MediaPipe Face Mesh landmarks of the first face in each image (N, 3, R, R) in [0, 1], seen
    bicubically enlarged to ``detect_size``: (478, 3) arrays in units of the image side (x right,
    y down), None where no face is found."""
    out = []
    with faces.face_mesh() as mesh:
        for image in images.detach().float().cpu():
            big = F.interpolate(image[None], size=detect_size, mode="bicubic", align_corners=False)[0].clamp(0, 1)
            rgb = (big.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
            found = faces.detect_landmarks(rgb, mesh=mesh)
            out.append(found[0] / detect_size if found else None)
    return out


def face_detection_rate(images: torch.Tensor, *, detect_size: int = 256) -> float:
    """Fraction of images (N, 3, R, R) in [0, 1] in which MediaPipe finds a face."""
    return sum(m is not None for m in image_landmarks(images, detect_size=detect_size)) / max(len(images), 1)


@torch.no_grad()
def pose_error_deg(images: torch.Tensor, labels: torch.Tensor, regressor) -> float:
    """Mean angle (degrees) between the regressor's camera of each image and its intended camera (N, 25)."""
    seen = regressor.labels(images)
    return cameras.angular_error(seen, labels.to(seen.device)).mean().item()


@torch.no_grad()
def identification(images: torch.Tensor, truth: torch.Tensor, identity_net) -> dict[str, float]:
    """``accuracy``: the fraction of images (N, 3, R, R) whose nearest of the N true renders (by
    identity distance) is their own; ``distance``: the mean distance to their own."""
    a, b = identity_net.embed(images), identity_net.embed(truth.to(images.device))
    distance = 1 - a @ b.T  # (N, N): image i against truth j
    own = distance.diagonal()
    return {"accuracy": (distance.argmin(1) == torch.arange(len(a), device=a.device)).float().mean().item(),
            "distance": own.mean().item()}


@torch.no_grad()
def measure(images: torch.Tensor, *, labels: torch.Tensor | None = None, regressor=None,
            truth: torch.Tensor | None = None, identity_net=None, perceptual=None,
            look: str | None = None, classifier=None, detect: bool = True) -> dict[str, float]:
    """Every measure the given inputs allow (see the module docstring) of images (N, 3, R, R) in [0, 1]."""
    out: dict[str, float] = {"n": len(images)}
    if detect:
        out["face_detection"] = face_detection_rate(images)
    if look is not None and classifier is not None:
        out["look_accuracy"] = look_accuracy(images, look, classifier)
    if labels is not None and regressor is not None:
        out["pose_error_deg"] = pose_error_deg(images, labels, regressor)
    if truth is not None and identity_net is not None:
        ident = identification(images, truth, identity_net)
        out["identification"], out["identity_distance"] = ident["accuracy"], ident["distance"]
    if truth is not None and perceptual is not None:
        out[f"{perceptual.name}_to_truth"] = perceptual(images, truth.to(images.device)).mean().item()
    return out


GATE_YAWS = (-30.0, 30.0)
"""The yaw range (degrees) of the views every "does it work" measure of a 3D stage is taken at."""


def gate_labels(n: int, *, device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, 25) labels of frontal-pitch cameras at n yaws evenly spread over :data:`GATE_YAWS`."""
    yaw = torch.linspace(*GATE_YAWS, n, device=device) if n > 1 else torch.zeros(n, device=device)
    return cameras.labels_from_angles(yaw, torch.zeros_like(yaw))


@dataclass
class Judge:
    """The networks the "does it work" measures use (pose regressor, look classifier, identity
    network, LPIPS-VGG to the truth); calling it measures a batch (see :func:`measure`)."""

    regressor: object
    classifier: object
    identity_net: object
    perceptual: object

    def __call__(self, images: torch.Tensor, *, look: str, labels: torch.Tensor | None = None,
                 truth: torch.Tensor | None = None) -> dict[str, float]:
        """The measures of images (N, 3, R, R) in [0, 1] meant to show ``look`` (at ``labels`` (N, 25);
        of the identities whose true renders are ``truth`` (N, 3, R, R), one per image)."""
        return measure(images, labels=labels, regressor=self.regressor if labels is not None else None,
                       truth=truth, identity_net=self.identity_net, perceptual=self.perceptual, look=look,
                       classifier=self.classifier)

    def names(self) -> dict[str, str]:
        """What made each measure, for the results beside them."""
        return {"face_detection": "MediaPipe face mesh", "look": "look classifier (world renders, degraded)",
                "pose": "pose regressor (world renders)", "identity": self.identity_net.name,
                "perceptual": self.perceptual.weights}


FRACTIONS = ("face_detection", "look_accuracy", "identification")
"""The measures that are fractions of the images."""


def out_of_range(record: dict[str, dict[str, dict]]) -> list[str]:
    """What is wrong in a notebook's ``quality`` record (stage -> look -> measures): fractions
    outside [0, 1], negative or non-finite errors, empty batches. Empty when it is sound."""
    problems = []
    for stage, looks in record.items():
        for look_name, q in looks.items() if stage != "networks" else ():
            where = f"{stage}/{look_name}"
            if not q.get("n"):
                problems.append(f"{where}: no images")
            problems += [f"{where}: {k} {v}" for k, v in q.items() if k in FRACTIONS and not 0 <= v <= 1]
            problems += [f"{where}: {k} {v}" for k, v in q.items() if k not in FRACTIONS and not (np.isfinite(v) and v >= -1e-6)]
    return problems


def table(record: dict[str, dict[str, dict]]) -> str:
    """A plain-text table of a ``quality`` record: one line per stage and look."""
    lines = []
    for stage, looks in record.items():
        for look_name, q in looks.items() if stage != "networks" else ():
            values = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in q.items())
            lines.append(f"{stage} | {look_name}: {values}")
    return "\n".join(lines)
