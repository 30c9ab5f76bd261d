"""Data sets of the head world, in memory and in EG3D's layout on disk.

EG3D layout: ``img_00000000.png``... plus ``dataset.json`` = ``{"labels": [[name, [25 floats]], ...]}``.
Beside it ``groundtruth.pt`` keeps what only the world knows: identity latents, angles, depth
and masks (read back with ``weights_only=True``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from portraitlib import cameras
from portraitlib.world.config import STYLES, WorldConfig
from portraitlib.provenance import module_version
from portraitlib.cache import atomic_torch_save, atomic_write_bytes, safe_torch_load
from portraitlib.world.identity import params_from_latent, sample_latents
from portraitlib.world.renderer import Scene, render
from portraitlib.world.styles import get_style

SPLIT_SEEDS = {"train": 1, "test": 2, "exemplars": 3}
"""Offsets that keep the identities of each split apart for one study seed."""


@dataclass(frozen=True)
class WorldSet:
    """N rendered images of the world with their cameras and ground truth."""

    look: str
    """``real`` or a style name."""
    images: torch.Tensor
    """(N, 3, R, R) in [0, 1]."""
    labels: torch.Tensor
    """(N, 25) EG3D camera labels."""
    angles: torch.Tensor
    """(N, 3) yaw, pitch, roll in degrees."""
    latents: torch.Tensor
    """(N, LATENT_DIM) identity latents."""
    depth: torch.Tensor
    """(N, 1, R, R) ray distance (far plane on the background)."""
    mask: torch.Tensor
    """(N, 1, R, R) foreground coverage in [0, 1]."""

    def __len__(self) -> int:
        return len(self.images)


def split_generator(seed: int, split: str, look: str = "real") -> torch.Generator:
    """A generator for one split of one study seed (styles get their own exemplar identities)."""
    look_offset = 0 if look == "real" else 100 + STYLES.index(look)
    return torch.Generator(device="cpu").manual_seed(seed * 10_000 + SPLIT_SEEDS[split] * 1_000 + look_offset)


def render_set(latents: torch.Tensor, angles: torch.Tensor, *, look: str, config: WorldConfig,
               scene: Scene | None = None, batch: int = 64, progress: str | None = None,
               device: torch.device | str = "cpu") -> WorldSet:
    """Render identities ``latents`` (N, D) at ``angles`` (N, 3) in ``look``; the ground truth of
    any look at any camera. ``scene`` gives per-image light and background (real look). The
    renderer runs on ``device``; the set comes back on the CPU (where data sets are kept)."""
    style = get_style(look)
    angles_d = angles.to(device)
    c2w = cameras.orbit_camera(angles_d[:, 0], angles_d[:, 1], angles_d[:, 2])
    latents_d, scene = latents.to(device), None if scene is None else scene.to(device)
    parts = []
    steps = range(0, len(latents), batch)
    for start in tqdm(steps, desc=progress, disable=progress is None, leave=False):
        rows = slice(start, start + batch)
        out = render(params_from_latent(latents_d[rows]), c2w[rows], resolution=config.image_size, style=style,
                     scene=None if scene is None else scene.index(rows), supersample=config.supersample,
                     steps=config.trace_steps)
        parts.append(out)
    return WorldSet(look=look, images=torch.cat([p.rgb for p in parts]).cpu(), labels=cameras.make_labels(c2w).cpu(),
                    angles=angles.clone(), latents=latents.clone(),
                    depth=torch.cat([p.depth for p in parts]).cpu(), mask=torch.cat([p.mask for p in parts]).cpu())


def _real_draws(n: int, *, split: str, seed: int) -> tuple[torch.Tensor, torch.Tensor, Scene]:
    g = split_generator(seed, split)
    latents = sample_latents(n, generator=g)
    angles = cameras.sample_poses(n, generator=g, kind="ffhq")
    return latents, angles, Scene.sample(n, generator=g)


def make_real_set(n: int, *, split: str, seed: int, config: WorldConfig, device: torch.device | str = "cpu"
                  ) -> WorldSet:
    """The "real photo" set (CelebA-HQ stand-in): FFHQ-like poses and varied light."""
    latents, angles, scene = _real_draws(n, split=split, seed=seed)
    return render_set(latents, angles, look="real", config=config, scene=scene, progress=f"world real/{split}",
                      device=device)


def real_scene(n: int, *, split: str, seed: int) -> Scene:
    """The light and background of every photo of a real split of ``n`` photos (the split's size), as
    :func:`make_real_set` drew them: to render the same photo at a new camera (a true novel view)."""
    return _real_draws(n, split=split, seed=seed)[2]


def make_exemplars(style: str, n: int, *, seed: int, config: WorldConfig, device: torch.device | str = "cpu"
                   ) -> WorldSet:
    """~20 unpaired exemplars of a style: other identities, mostly frontal as artists draw."""
    g = split_generator(seed, "exemplars", style)
    latents = sample_latents(n, generator=g)
    angles = cameras.sample_poses(n, generator=g, kind="artist")
    return render_set(latents, angles, look=style, config=config, progress=f"world exemplars/{style}", device=device)


def make_true_stylized(style: str, *, split: str, n: int, seed: int, config: WorldConfig,
                       device: torch.device | str = "cpu") -> WorldSet:
    """The world's answer key for a real split of ``n`` photos: each photo's identity rendered in
    ``style`` at the photo's camera, i.e. what a perfect stylization of that photo looks like."""
    latents, angles, _ = _real_draws(n, split=split, seed=seed)
    return render_set(latents, angles, look=style, config=config, progress=f"world truth/{split}/{style}",
                      device=device)


def cached_views(*, cache, latents: torch.Tensor, angles: torch.Tensor, look: str, config: WorldConfig,
                 device: torch.device | str = "cpu") -> WorldSet:
    """:func:`render_set` (no scene: the styled looks) through the artefact cache, keyed by the world
    config, the look and a digest of the identities (N, D) and cameras (N, 3): notebooks that score
    against the same true views render them once."""
    digest = hashlib.sha256(latents.float().contiguous().numpy().tobytes()
                            + angles.float().contiguous().numpy().tobytes()).hexdigest()[:16]
    fields = ("images", "labels", "angles", "latents", "depth", "mask")

    def build() -> dict:
        views = render_set(latents, angles, look=look, config=config, device=device)
        return {name: getattr(views, name) for name in fields}

    stored = cache.get_or_build(f"world-views-{look}", {"world": dataclasses.asdict(config), "look": look,
                                                       "views": digest, "code": module_version(__name__)}, build)
    return WorldSet(look=look, **{name: stored[name] for name in fields})


def pose_set_world(config: WorldConfig) -> WorldConfig:
    """``config`` at the pose set's resolution: ``pose_set_size`` px, or ``image_size`` when smaller."""
    return dataclasses.replace(config, image_size=min(config.image_size, config.pose_set_size))


def pose_set_draws(n_per_look: int, *, looks: tuple[str, ...], split: str, seed: int
                   ) -> list[tuple[str, torch.Tensor, torch.Tensor, Scene | None]]:
    """What :func:`make_pose_set` renders, look by look: (look, identities (n, D), angles (n, 3),
    the real look's light and background or None); yaw +-45 and pitch +-20 (``train``) or
    FFHQ-like poses (``test``)."""
    g = torch.Generator(device="cpu").manual_seed(seed * 10_000 + 7_000 + SPLIT_SEEDS[split])
    kind = "uniform" if split == "train" else "ffhq"
    draws = []
    for look in looks:
        latents = sample_latents(n_per_look, generator=g)
        angles = cameras.sample_poses(n_per_look, generator=g, kind=kind)
        draws.append((look, latents, angles, Scene.sample(n_per_look, generator=g) if look == "real" else None))
    return draws


def make_pose_set(n_per_look: int, *, looks: tuple[str, ...], split: str, seed: int,
                  config: WorldConfig, device: torch.device | str = "cpu") -> WorldSet:
    """Images of every look (:func:`pose_set_draws`: new identities) at :func:`pose_set_world`'s
    resolution: data of the pose regressor, the look classifier and the world CLIP."""
    config = pose_set_world(config)
    return concat([render_set(latents, angles, look=look, config=config, scene=scene,
                              progress=f"world pose/{split}/{look}", device=device)
                   for look, latents, angles, scene in pose_set_draws(n_per_look, looks=looks, split=split, seed=seed)])


def cached_pose_set(*, cache, n_per_look: int, looks: tuple[str, ...], split: str, seed: int,
                    config: WorldConfig, device: torch.device | str = "cpu") -> WorldSet:
    """:func:`make_pose_set` through the artefact cache: the pose regressor and the look classifier
    train on the same renders, made once."""
    fields = ("images", "labels", "angles", "latents", "depth", "mask")

    def build() -> dict:
        views = make_pose_set(n_per_look, looks=looks, split=split, seed=seed, config=config, device=device)
        return {name: getattr(views, name) for name in fields}

    key = {"world": dataclasses.asdict(config), "looks": list(looks), "n_per_look": n_per_look, "split": split,
           "code": module_version(__name__)}
    stored = cache.get_or_build(f"world-pose-{split}", key, build)
    return WorldSet(look="+".join(looks), **{name: stored[name] for name in fields})


def concat(sets: list[WorldSet]) -> WorldSet:
    """One set of several (its ``look`` joins theirs with '+')."""
    return WorldSet(look="+".join(s.look for s in sets),
                    **{name: torch.cat([getattr(s, name) for s in sets])
                       for name in ("images", "labels", "angles", "latents", "depth", "mask")})


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, R, R) in [0, 1] to (N, R, R, 3) uint8."""
    return (images.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def write_eg3d(images: torch.Tensor, labels: torch.Tensor, folder: Path) -> Path:
    """Write images (N, 3, R, R) in [0, 1] with labels (N, 25) in EG3D's layout; returns
    ``dataset.json``'s path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"img_{i:08d}.png" for i in range(len(images))]
    for name, pixels in zip(names, to_uint8(images)):
        Image.fromarray(pixels).save(folder / name)
    entries = [[name, [round(float(v), 7) for v in label]] for name, label in zip(names, labels)]
    path = folder / "dataset.json"
    atomic_write_bytes(path, json.dumps({"labels": entries}).encode())
    return path


def save_eg3d(data: WorldSet, folder: Path) -> Path:
    """Write ``data`` in EG3D's layout (+ ``groundtruth.pt``); returns ``dataset.json``'s path."""
    path = write_eg3d(data.images, data.labels, folder)
    atomic_torch_save({"look": data.look, "angles": data.angles, "latents": data.latents,
                       "depth": data.depth.half(), "mask": data.mask.half()}, Path(folder) / "groundtruth.pt")
    return path


def load_eg3d(folder: Path, *, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Images (N, 3, R, R) in [0, 1], labels (N, 25) and file names of an EG3D-layout folder (its
    first ``limit`` entries only, when given)."""
    labels, names = eg3d_labels(folder)
    names = names[:limit]
    images = np.stack([np.asarray(Image.open(Path(folder) / name).convert("RGB")) for name in names])
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255, labels[:len(names)], names


def eg3d_labels(folder: Path) -> tuple[torch.Tensor, list[str]]:
    """Labels (N, 25) and file names of an EG3D-layout folder, from its ``dataset.json`` alone."""
    meta = Path(folder) / "dataset.json"
    if not meta.exists():
        raise FileNotFoundError(f"{meta} not found: an EG3D data set needs dataset.json beside its images")
    entries = json.loads(meta.read_text())["labels"]
    labels = torch.tensor([label for _, label in entries], dtype=torch.float32, device="cpu").reshape(len(entries), -1)
    if labels.shape[1:] != (25,):
        raise ValueError(f"{meta}: labels must have 25 numbers, got shape {tuple(labels.shape)}")
    return labels, [n for n, _ in entries]


def load_groundtruth(folder: Path) -> dict:
    """The world's ground truth saved beside an EG3D-layout set."""
    return safe_torch_load(Path(folder) / "groundtruth.pt")


def study_datasets(*, cache, config: WorldConfig, seed: int, device: torch.device | str = "cpu") -> dict[str, Path]:
    """The world's data sets of a study, built on first use and cached in EG3D layout.

    Keys: ``real_train``, ``real_test``, and for each style of ``config`` ``exemplars_<style>`` and
    ``truth_test_<style>`` (the held-out photos' true stylizations, :func:`make_true_stylized`).
    Any notebook may call this; the first call renders (on ``device``), later ones read the cache.
    """
    world = dataclasses.asdict(config)
    makers = {"real_train": lambda: make_real_set(config.n_train, split="train", seed=seed, config=config,
                                                  device=device),
              "real_test": lambda: make_real_set(config.n_test, split="test", seed=seed, config=config, device=device)}
    for style in config.styles:
        makers[f"exemplars_{style}"] = lambda style=style: make_exemplars(style, config.n_exemplars, seed=seed,
                                                                          config=config, device=device)
        makers[f"truth_test_{style}"] = lambda style=style: make_true_stylized(style, split="test", n=config.n_test,
                                                                               seed=seed, config=config, device=device)
    return {name: cache.folder(f"world-{name}", {"world": world, "set": name, "code": module_version(__name__)},
                               lambda tmp, make=make: save_eg3d(make(), tmp))
            for name, make in makers.items()}
