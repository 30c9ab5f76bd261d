"""What every stage of the study reads: its images (photos, exemplars and, in the world, the truth)
and the frozen networks of its losses and measures, on the study's device.

    data = study_data.load_images(ctx)      # StudyImages on ctx.device
    nets = study_data.loss_nets(ctx)        # LossNets: LPIPS (both backbones) and identity, lazily
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from portraitlib import metrics
from portraitlib.identity import IdentityNet, identity_net_name, load_identity_net
from portraitlib.paths import cache_dir
from portraitlib.world import datasets
from portraitlib.world.folder_images import FolderImages


@dataclass
class StudyImages:
    """The images notebook 01 works on, from the world or from CelebA-HQ and exemplar folders."""

    real_train: torch.Tensor | FolderImages
    """(N, 3, R, R) real photos in [0, 1] that become the prior set (paper: a folder read on demand,
    which every loop indexes like the tensor)."""
    train_labels: torch.Tensor
    """(N, 25) their camera labels (the world's truth, or estimated from the photos)."""
    real_test: torch.Tensor
    """(M, 3, R, R) held-out real photos: early stopping and the reported errors."""
    test_labels: torch.Tensor
    """(M, 25) their camera labels."""
    exemplars: dict[str, torch.Tensor]
    """Per style, (K, 3, R, R) unpaired exemplars."""
    test_truth: dict | None = None
    """World only: ``latents`` and ``angles`` of the test photos, to render true stylized images."""
    source: str = "world"
    """Where the images come from."""
    train_depth: torch.Tensor | None = None
    """World only: (N, 1, R, R) true ray distance of the training photos (far plane off the head)."""
    test_depth: torch.Tensor | None = None
    """World only: (M, 1, R, R) true ray distance of the held-out photos."""
    test_mask: torch.Tensor | None = None
    """World only: (M, 1, R, R) the held-out photos' head coverage in [0, 1]."""
    test_styled: dict[str, torch.Tensor] | None = None
    """World only: per style, (M, 3, R, R) the true stylized image of each held-out photo at its camera."""

    def to(self, device: torch.device) -> "StudyImages":
        """The same images with every tensor on ``device``."""
        def move(value):
            if isinstance(value, (torch.Tensor, FolderImages)):
                return value.to(device)
            if isinstance(value, dict):
                return {k: move(v) for k, v in value.items()}
            return value
        return dataclasses.replace(self, **{f.name: move(getattr(self, f.name)) for f in dataclasses.fields(self)})


def load_images(ctx) -> StudyImages:
    """The world's cached sets (smoke, mini), or CelebA-HQ and exemplars in EG3D layout under
    ``<cache>/data/`` (paper): ``celebahq_train``, ``celebahq_test``, ``exemplars/<style>``; on
    ``ctx.device``."""
    return _read_images(ctx).to(ctx.device)


def photo_folders(ctx) -> dict[str, Path]:
    """The paper data source's EG3D-layout folders under ``<cache>/data/``: ``train``
    (``celebahq_train``), ``test`` (``celebahq_test``) and one per style (``exemplars/<style>``);
    FileNotFoundError naming the missing ones and the command that prepares them."""
    root = cache_dir() / "data"
    folders = {"train": root / "celebahq_train", "test": root / "celebahq_test",
               **{s: root / "exemplars" / s for s in ctx.profile.world.styles}}
    missing = [str(f) for f in folders.values() if not (f / "dataset.json").exists()]
    if missing:
        raise FileNotFoundError(
            "the paper profile reads aligned CelebA-HQ photos and style exemplars in EG3D layout "
            "(images + dataset.json with camera labels; `python -m portraitlib.prepare` makes them). "
            f"Missing: {', '.join(missing)}")
    return folders


def _read_images(ctx) -> StudyImages:
    cfg = ctx.profile.world
    if ctx.profile.data_source == "world":
        dirs = datasets.study_datasets(cache=ctx.cache, config=cfg, seed=ctx.seed, device=ctx.device)
        train, test = datasets.load_eg3d(dirs["real_train"]), datasets.load_eg3d(dirs["real_test"])
        truth = datasets.load_groundtruth(dirs["real_test"])
        return StudyImages(real_train=train[0], train_labels=train[1], real_test=test[0], test_labels=test[1],
                           exemplars={s: datasets.load_eg3d(dirs[f"exemplars_{s}"])[0] for s in cfg.styles},
                           test_truth={"latents": truth["latents"], "angles": truth["angles"]}, source="world",
                           train_depth=datasets.load_groundtruth(dirs["real_train"])["depth"].float(),
                           test_depth=truth["depth"].float(), test_mask=truth["mask"].float(),
                           test_styled={s: datasets.load_eg3d(dirs[f"truth_test_{s}"])[0] for s in cfg.styles})
    folders = photo_folders(ctx)
    train, test = FolderImages(folders["train"]), datasets.load_eg3d(folders["test"])
    return StudyImages(real_train=train, train_labels=train.labels, real_test=test[0], test_labels=test[1],
                       exemplars={s: datasets.load_eg3d(folders[s])[0] for s in cfg.styles}, source="celebahq")


class LossNets:
    """The frozen networks the losses, criteria and measures use, each loaded on first use: their
    names (all a cache key or the stylize command needs) go beside every number.

    ``perceptual`` is the profile's LPIPS (the tables' main column and the method's losses),
    ``other`` the other LPIPS backbone (the tables' extra column), ``kid_features`` whichever of
    the two is VGG16 (KID's trunk), ``identity`` the identity network.
    """

    def __init__(self, *, perceptual: Callable[[], metrics.LPIPS], other: Callable[[], metrics.LPIPS],
                 identity: Callable[[], IdentityNet], names: dict[str, str]):
        self._load = {"perceptual": perceptual, "other": other, "identity": identity}
        self._names, self._nets = dict(names), {}

    @classmethod
    def of(cls, *, perceptual: metrics.LPIPS, identity: IdentityNet, other: metrics.LPIPS | None = None) -> "LossNets":
        """Ready networks (``other`` defaults to ``perceptual``)."""
        other = other or perceptual
        return cls(perceptual=lambda: perceptual, other=lambda: other, identity=lambda: identity,
                   names={"perceptual": perceptual.name, "perceptual_other": other.name, "identity": identity.name})

    def _get(self, key: str):
        if key not in self._nets:
            self._nets[key] = self._load[key]()
        return self._nets[key]

    @property
    def perceptual(self) -> metrics.LPIPS:
        return self._get("perceptual")

    @property
    def other(self) -> metrics.LPIPS:
        return self._get("other")

    @property
    def identity(self) -> IdentityNet:
        return self._get("identity")

    @property
    def kid_features(self) -> metrics.LPIPS:
        """The VGG16 one of the two LPIPS networks (the profile's own when neither is)."""
        return self.other if "vgg" in self._names["perceptual_other"] else self.perceptual

    def names(self) -> dict:
        return dict(self._names)


def loss_nets(ctx) -> LossNets:
    """The profile's perceptual (LPIPS, both backbones) and identity networks, frozen, on
    ``ctx.device``, each loaded when first used."""
    policy = ctx.profile.metrics.lpips
    other = metrics.other_backbone(policy)
    return LossNets(perceptual=lambda: metrics.load_lpips(policy, seed=ctx.seed).to(ctx.device),
                    other=lambda: metrics.load_lpips(policy, net=other, seed=ctx.seed).to(ctx.device),
                    identity=lambda: ctx.build("identity", load_identity_net),
                    names={"perceptual": metrics.lpips_policy_name(policy),
                           "perceptual_other": metrics.lpips_policy_name(policy, net=other),
                           "identity": identity_net_name()})
