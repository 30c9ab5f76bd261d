"""Where the study's files live: the repository root, params/, notebooks/ and reports/."""
from __future__ import annotations

import os
from pathlib import Path

REPORTS_ENV = "PORTRAITLIB_REPORTS"
"""Environment variable that moves ``reports/`` (the runner and the tests set it)."""
CACHE_ENV = "PORTRAITLIB_CACHE"
"""Environment variable that moves the artefact cache (default ``.cache/`` in the root)."""
PROFILES_ENV = "PORTRAITLIB_PROFILES"
"""Environment variable naming a folder of extra profile YAMLs beside ``params/`` (your own
profiles; the tests' paper-structure profile)."""


def project_root() -> Path:
    """The repository root: the folder holding ``params/`` above this package."""
    here = Path(__file__).resolve().parent.parent
    if (here / "params").is_dir():
        return here
    env = os.environ.get("PORTRAITLIB_ROOT")
    if env and (Path(env) / "params").is_dir():
        return Path(env)
    raise FileNotFoundError(
        "cannot find the study's params/ folder: install portraitlib from a clone "
        "(pip install -e .) or set PORTRAITLIB_ROOT to the clone's path")


def params_dir() -> Path:
    return project_root() / "params"


def extra_params_dir() -> Path | None:
    """``$PORTRAITLIB_PROFILES``, when set: more profiles."""
    env = os.environ.get(PROFILES_ENV)
    return Path(env) if env else None


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def reports_dir(profile: str) -> Path:
    """``reports/<profile>/`` (or under ``$PORTRAITLIB_REPORTS``)."""
    base = Path(os.environ.get(REPORTS_ENV) or project_root() / "reports")
    return base / profile


def cache_dir() -> Path:
    """The one cache root: data sets (``data/``), weight files (``weights/``) and artefacts."""
    return Path(os.environ.get(CACHE_ENV) or project_root() / ".cache")


def released_weights_dir() -> Path:
    """The repository's ``weights/``: the study's own released base models (G_world, S_world), committed
    with their model cards."""
    return project_root() / "weights"


def weights_path(name: str) -> Path:
    """A weight file named in a profile: an absolute path as it is; a relative one from the
    repository's released ``weights/`` when it is there, else under the cache root's ``weights/``
    (so ``$PORTRAITLIB_CACHE`` moves data, downloaded weights and artefacts together)."""
    path = Path(name).expanduser()
    if path.is_absolute():
        return path
    released = released_weights_dir() / path
    return released if released.is_file() else cache_dir() / "weights" / path
