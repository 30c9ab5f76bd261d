"""Tables 1-3 of AgileGAN3D: the methods, their inversions and the two scoring protocols.

A *method* is a style generator G_t and a way to turn photos into its codes. Each is scored on
held-out photos in two ways:

* the paper's protocol, **Stylization LPIPS**: the perceptual distance between G_t(codes) at the
  photo's camera and x_s, the 2D style prior's stylization of the same photo;
* the **ground-truth protocol**, only in the world: the distance to the true stylized head rendered
  at the photo's camera and at novel cameras, the identity distance to it, and multi-view
  consistency.

The paper's numbers (seed 000) sit beside ours in :data:`PAPER_TABLE1`, :data:`PAPER_TABLE2` and
:data:`PAPER_TABLE3`.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from portraitlib import consistency, metrics
from portraitlib.cache import atomic_write_bytes
from portraitlib.device import device_of
from portraitlib.provenance import module_version
from portraitlib.generator3d import render, resize
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.training.encoder3d import mean_w_3d
from portraitlib.world import datasets

OURS, AGILEGAN_EG3D, TOONIFY_EG3D = "Ours", "AgileGAN-EG3D", "Toonify-EG3D"
"""The names of Table 1's methods, as the paper prints them (see ``portraitlib.agilegan3d.baselines``)."""
PAPER_TABLE1 = {  # Stylization LPIPS, CelebA-HQ test images; the paper's "Sam Yang" style is our anime
    "cartoon": {"Ours": 0.195, "AgileGAN-EG3D": 0.440, "Toonify-EG3D": 0.481},
    "oil_painting": {"Ours": 0.212, "AgileGAN-EG3D": 0.433, "Toonify-EG3D": 0.525},
    "comic": {"Ours": 0.218, "AgileGAN-EG3D": 0.379, "Toonify-EG3D": 0.486},
    "anime": {"Ours": 0.20, "AgileGAN-EG3D": 0.445, "Toonify-EG3D": 0.506},
    "sculpture": {"Ours": 0.234, "AgileGAN-EG3D": 0.469, "Toonify-EG3D": 0.549},
}
PAPER_TABLE2 = {"without L_cyc": {"mse": 0.0203, "ssim": 0.525, "lpips": 0.317},
                "with L_cyc": {"mse": 0.0200, "ssim": 0.543, "lpips": 0.194}}
PAPER_TABLE3 = {"20": 0.41, "100": 0.252, "1000": 0.236, "full": 0.227, "full, guided, estimated pose": 0.211,
                "full, guided": 0.200}


def paper_table3(set_name: str, *, guided: bool) -> float | None:
    """The paper's Table 3 value for a run on the training set ``set_name`` (``exemplars`` is read
    as its "20"; ``prior_<k>`` as k samples), guided or not; ``None`` where the paper has no row."""
    if guided:
        key = {"prior_full": "full, guided", "prior_full_estimated": "full, guided, estimated pose"}.get(set_name)
    else:
        key = {"exemplars": "20", "prior_full": "full"}.get(set_name, set_name.removeprefix("prior_"))
    return PAPER_TABLE3.get(key)


@dataclass
class Method:
    """One row of Table 1 for one style."""

    name: str
    """``Ours``, ``AgileGAN-EG3D`` or ``Toonify-EG3D``."""
    generator: TriPlaneGenerator
    """The style generator G_t."""
    codes: torch.Tensor
    """(N, num_ws or num_ws + 3, w_dim) codes of the held-out photos for G_t."""
    description: str
    """How G_t was trained and how photos were inverted."""


def optimize_codes(generator: TriPlaneGenerator, photos: torch.Tensor, labels: torch.Tensor, *,
                   perceptual: metrics.LPIPS, steps: int, lr: float = 0.01, batch: int = 16,
                   seed: int = 0) -> tuple[torch.Tensor, list[float]]:
    """Toonify's inversion: W+ codes (N, num_ws + 3, w_dim) of photos (N, 3, R, R) in [0, 1], optimised
    from G's mean w by Adam so that G(codes) at the photos' cameras ``labels`` (N, 25) matches them
    (L2 + LPIPS). Returns the codes (on G's device) and the mean loss of each step (over batches)."""
    generator.eval()
    device = device_of(generator)
    photos, labels = photos.to(device), labels.to(device)
    start = mean_w_3d(generator, seed=seed).detach()
    codes, losses = [], [0.0] * steps
    for i in range(0, len(photos), batch):
        x, c = photos[i:i + batch], labels[i:i + batch]
        ws = start.expand(len(x), generator.num_ws_plus, -1).clone().requires_grad_(True)
        opt = torch.optim.Adam([ws], lr=lr)
        for step in range(steps):
            image = (generator.synthesis(ws, c, deterministic=True)["image"] + 1) / 2
            loss = (image - x).square().mean() + perceptual(image, x).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses[step] += loss.item() * len(x) / len(photos)
        codes.append(ws.detach())
    return torch.cat(codes), losses


def mean_sem(values: torch.Tensor) -> dict:
    """Mean and standard error of per-photo values (N,), and the values themselves (a list, in the
    photos' order), which the claims' paired comparisons need (``portraitlib.stats``)."""
    values = values.double()
    sem = values.std().item() / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return {"mean": values.mean().item(), "sem": sem, "values": values.tolist()}


@torch.no_grad()
def inversion_measures(images: torch.Tensor, photos: torch.Tensor, nets) -> dict[str, dict]:
    """Table 2's measures of inversions ``images`` against the ``photos`` (both (N, 3, R, R) in
    [0, 1]): MSE, SSIM, LPIPS on both backbones and the identity distance, each :func:`mean_sem`
    over the photos. ``nets``: the study's ``LossNets``."""
    return {"mse": mean_sem(metrics.mse(images, photos)), "ssim": mean_sem(metrics.ssim(images, photos)),
            **{p.name: mean_sem(p(images, photos)) for p in (nets.perceptual, nets.other)},
            "identity_distance": mean_sem(nets.identity.distance(images, photos))}


@torch.no_grad()
def score(method: Method, *, labels: torch.Tensor, x_s: torch.Tensor, perceptual: metrics.LPIPS,
          other: metrics.LPIPS | None = None, truth: dict | None = None, identity_net=None, regressor=None) -> dict:
    """Both protocols for one method: ``stylization_lpips`` (to x_s (N, 3, R, R), the paper's) and,
    with ``truth`` (the world's ``at_pose`` images (N, 3, R, R); ``novel_labels`` (K, 25) with
    ``novel`` images (N, K, 3, R, R), ``novel_depth`` and ``novel_mask`` (N, K, 1, R, R), sorted by
    yaw), the LPIPS to the true stylized head at the photo's camera and at the novel cameras, the
    identity distance to it, and the multi-view consistency of the novel views (see
    :func:`portraitlib.consistency.sweep_scores`). Values are mean and standard error over photos.
    With ``other`` (the other LPIPS backbone), ``stylization_<other.name>`` and ``truth_<other.name>``
    beside them: the tables' extra column."""
    images = render(method.generator, method.codes, labels)["image"]
    row = {"stylization_lpips": mean_sem(perceptual(images, x_s))}
    if other is not None:
        row[f"stylization_{other.name}"] = mean_sem(other(images, x_s))
    if truth is None:
        return row
    row["truth_lpips"] = mean_sem(perceptual(images, truth["at_pose"]))
    if other is not None:
        row[f"truth_{other.name}"] = mean_sem(other(images, truth["at_pose"]))
    row["identity_to_truth"] = mean_sem(identity_net.distance(images, truth["at_pose"]))
    k = len(truth["novel_labels"])
    n = len(method.codes)
    novel = render(method.generator, method.codes.repeat_interleave(k, 0), truth["novel_labels"].repeat(n, 1))["image"]
    row["truth_lpips_novel"] = mean_sem(perceptual(novel, truth["novel"].flatten(0, 1)))
    sweep = consistency.sweep_scores(novel.unflatten(0, (n, k)), truth["novel_labels"], depth=truth["novel_depth"],
                                     mask=truth["novel_mask"], identity_net=identity_net, regressor=regressor,
                                     centre=k // 2)
    row["warp_ratio"] = sweep["warp_ratio"]
    row["yaw_error"] = sweep["yaw_error"]
    return row


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub markdown table; floats with 3 decimals, ``None`` as n/a."""
    def cell(v):
        if v is None:
            return "n/a"
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
        return str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def save_table(folder, name: str, header: list[str], rows: list[list], *, caption: str) -> str:
    """Write ``<folder>/<name>.csv`` and ``<name>.md`` (caption, then the table); return the markdown."""
    folder = Path(folder)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    atomic_write_bytes(folder / f"{name}.csv", buffer.getvalue().encode())
    text = f"{caption}\n\n{markdown_table(header, rows)}\n"
    atomic_write_bytes(folder / f"{name}.md", text.encode())
    return text


def toonify_codes(ctx, generator: TriPlaneGenerator, pretrained_art: dict, photos: torch.Tensor, labels: torch.Tensor,
                  *, perceptual: metrics.LPIPS) -> tuple[torch.Tensor, list[float]]:
    """:func:`optimize_codes` of the held-out ``photos`` in the pretrained G with the profile's
    settings, cached (the same codes serve every style's Toonify-EG3D)."""
    ev = ctx.profile.evaluation
    key = {"pretrained": pretrained_art["config"], "photos": len(photos), "steps": ev.toonify_steps,
           "lr": ev.toonify_lr, "perceptual": perceptual.name, "code": module_version(__name__)}

    def build() -> dict:
        codes, losses = optimize_codes(generator, photos, labels, perceptual=perceptual, steps=ev.toonify_steps,
                                       lr=ev.toonify_lr, seed=ctx.seed)
        return {"codes": codes, "losses": losses}

    art = ctx.cache.get_or_build("toonify-codes", key, build)
    return art["codes"].to(device_of(generator)), art["losses"]


def world_truth(data, style: str, *, cache, config, n: int, novel_yaws, size: int) -> dict:
    """The ground truth :func:`score` needs for the first ``n`` held-out photos of ``data``
    (:class:`portraitlib.study_data.StudyImages` from the world): the true stylized head at each
    photo's camera and at the ``novel_yaws`` (pitch 0), images resized to ``size``. The novel views
    are rendered once per study through ``cache`` (on the CPU); everything comes back on the
    device of ``data``."""
    device = data.real_test.device
    latents = data.test_truth["latents"][:n].cpu()
    at_pose = resize(data.test_styled[style][:n], size)
    k = len(novel_yaws)
    novel_angles = torch.tensor([[y, 0.0, 0.0] for y in novel_yaws], device="cpu").repeat(n, 1)
    world = datasets.cached_views(cache=cache, latents=latents.repeat_interleave(k, 0), angles=novel_angles,
                                  look=style, config=config, device=device)
    novel, depth, mask = (resize(x.to(device), size).unflatten(0, (n, k)) for x in (world.images, world.depth, world.mask))
    return {"at_pose": at_pose, "novel": novel, "novel_depth": depth, "novel_mask": mask,
            "novel_labels": consistency.yaw_labels(list(novel_yaws)).to(device)}


def table3_runs(study) -> dict:
    """Table 3's generators of the ablation style (notebooks 03 and 05's runs, from the ``study``'s
    cache): per row label, ``generator``, ``set`` (training-set name), ``guided``, ``size`` and the
    ``paper`` value. Both readings of the paper's "20 samples" are rows: the raw exemplars and 20
    prior samples (the latter where ``transfer.subset_sizes`` holds 20)."""
    style = study.ctx.profile.transfer.ablation_style
    sets = study.training_sets(style, ablation=True)
    rows = [(f"{len(sets['exemplars'].images)} raw exemplars", "exemplars", False)]
    rows += [(f"{k} style-prior samples", f"prior_{k}", False) for k in study.ctx.profile.transfer.subset_sizes]
    rows += [(f"full ({len(sets['prior_full'].images)})", "prior_full", False),
             ("full, guided, estimated pose", "prior_full_estimated", True), ("full, guided", "prior_full", True)]
    runs = {}
    for label, set_name, guided in rows:
        if set_name in sets:
            runs[label] = {"generator": study.transfer(style, set_name, guided=guided)[0], "set": set_name,
                           "guided": guided, "size": len(sets[set_name].images),
                           "paper": paper_table3(set_name, guided=guided)}
    return runs
