"""What every notebook opens with: ``ctx = pl.setup("01_style_prior", profile=profile)``.

The context fixes the seeds, picks the device once (every stage then builds its networks with
``ctx.build`` and puts its data on ``ctx.device``), and is how a notebook writes its outputs:
``ctx.record(...)`` for results (JSON with provenance) and ``ctx.save_figure(...)`` for figures
(PNG with deterministic metadata), both under ``reports/<profile>/``.
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
import torch

from portraitlib.cache import ArtifactCache, atomic_write_bytes
from portraitlib.device import configure_backends, pick_device, seeded_build, seeded_generator
from portraitlib.distributed import init_from_env, is_writer, world_size
from portraitlib.paths import reports_dir
from portraitlib.profile_loading import load_profile
from portraitlib.profiles import Profile
from portraitlib.provenance import code_version, git_commit, package_versions


Net = TypeVar("Net")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seeded_generator(seed)


@dataclass
class StudyContext:
    """One notebook's run: its profile, seed, device, output folders and artefact cache."""

    notebook: str
    """Notebook name, e.g. ``01_style_prior``; names the result file."""
    profile: Profile
    """The loaded profile."""
    seed: int
    """Seed of this run (the profile's unless overridden)."""
    device: torch.device
    """Where every network, batch and random draw of the run lives (chosen once, in :func:`setup`)."""
    cache: ArtifactCache
    """Artefact cache for this profile and seed."""

    @property
    def reports(self) -> Path:
        return reports_dir(self.profile.name)

    @property
    def figures(self) -> Path:
        return self.reports / "figures"

    @property
    def results(self) -> Path:
        return self.reports / "results"

    @property
    def bf16(self) -> bool:
        """Whether GAN training runs under bf16 autocast: the profile asks for it and the device is CUDA."""
        return self.profile.precision == "bf16" and self.device.type == "cuda"

    def build(self, stage: str, make: Callable[[], Net]) -> Net:
        """``make()``'s networks (a module, or a tuple of modules), built on the CPU inside the RNG
        of (seed, ``stage``) and then moved to ``ctx.device``: cached, partly cached and clean runs
        start from bit-identical weights."""
        with seeded_build(self.seed, stage):
            nets = make()
        return tuple(n.to(self.device) for n in nets) if isinstance(nets, tuple) else nets.to(self.device)

    def generator(self, offset: int = 0) -> torch.Generator:
        """A ``torch.Generator`` on ``ctx.device`` seeded with ``seed + offset``."""
        return seeded_generator(self.seed + offset, self.device)

    def provenance(self) -> dict:
        return {"notebook": self.notebook, "profile": self.profile.name, "seed": self.seed,
                "device": str(self.device), "processes": world_size(), "precision": "bf16" if self.bf16 else "fp32",
                "git_commit": git_commit(), "code_version": code_version(), "versions": package_versions()}

    def record(self, values: dict) -> Path:
        """Write ``values`` with provenance to ``reports/<profile>/results/<notebook>.json``."""
        payload = {"values": _jsonable(values), "provenance": self.provenance()}
        path = self.results / f"{self.notebook}.json"
        text = json.dumps(payload, indent=2, sort_keys=True, allow_nan=False)
        atomic_write_bytes(path, (text + "\n").encode())
        return path

    def save_figure(self, fig, name: str, *, dpi: int = 100) -> Path:
        """Save a matplotlib figure as ``figures/<name>.png`` with deterministic metadata."""
        path = self.figures / f"{name}.png"
        if not is_writer():  # data-parallel: rank 0 saves the report's figures
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        # No software version or date in the PNG, so a rerun gives identical bytes; the
        # description says what produced the figure.
        fig.savefig(path, dpi=dpi, metadata={
            "Software": None,
            "Description": f"portraitlib {self.notebook}, profile {self.profile.name}, seed {self.seed}",
        })
        return path

    def banner(self) -> str:
        p = self.profile
        return (f"portraitlib · {self.notebook} · profile {p.name} ({p.description}) · seed {self.seed}"
                f" · device {self.device} · data {p.data_source}")


def setup(notebook: str, *, profile: str, seed: int | None = None, device: str | None = None,
          read_only: bool = False, quiet: bool = False) -> StudyContext:
    """Load the profile, seed everything, pick the device (``device`` overrides the profile's:
    auto, cpu, cuda, cuda:N, mps) and return the notebook's context (``read_only``: use only
    artefacts already built, see :class:`ArtifactCache`)."""
    loaded = load_profile(profile)
    run_seed = loaded.seed if seed is None else int(seed)
    seed_everything(run_seed)
    chosen = init_from_env(pick_device(device or loaded.device))  # under torchrun: this rank's GPU
    configure_backends(chosen)
    bf16 = loaded.precision == "bf16" and chosen.type == "cuda"
    ctx = StudyContext(notebook=notebook, profile=loaded, seed=run_seed, device=chosen,
                       cache=ArtifactCache(profile=loaded.name, seed=run_seed, read_only=read_only,
                                           variant="bf16" if bf16 else ""))
    if not quiet:
        print(ctx.banner())
    return ctx


def _jsonable(value):
    """Turn tensors, arrays and numpy scalars into plain JSON values; reject NaN and inf."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _jsonable(value.detach().cpu().tolist())
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"cannot record a non-finite number ({value})")
    return value
