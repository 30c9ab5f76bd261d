"""Loading a profile: ``params/<name>.yaml`` into the typed sections of :mod:`portraitlib.profiles`,
checking every key, type and allowed value (an error names the valid choices)."""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Literal

import yaml

from portraitlib.paths import PROFILES_ENV, extra_params_dir, params_dir
from portraitlib.profiles import Profile, ProfileError


def _profile_files() -> dict[str, Path]:
    """Profile name -> YAML file: ``params/`` and, when set, ``$PORTRAITLIB_PROFILES``."""
    files = {p.stem: p for p in params_dir().glob("*.yaml")}
    extra = extra_params_dir()
    if extra is not None:
        if not extra.is_dir():
            raise ProfileError(f"{PROFILES_ENV}={extra} is not a folder")
        for path in extra.glob("*.yaml"):
            if path.stem in files:
                raise ProfileError(f"{path} would replace the study's profile {path.stem!r}: rename it")
            files[path.stem] = path
    return files


def available_profiles() -> list[str]:
    """Names of the profiles found in ``params/`` (and ``$PORTRAITLIB_PROFILES``), sorted."""
    return sorted(_profile_files())


def load_profile(name: str) -> Profile:
    """Load the profile ``name`` (``params/<name>.yaml``) into a :class:`Profile`, validating every
    key and value."""
    files = _profile_files()
    if name not in files:
        raise ProfileError(f"unknown profile {name!r}; valid profiles: {', '.join(sorted(files))}")
    where = f"params/{name}.yaml" if files[name].parent == params_dir() else str(files[name])
    raw = yaml.safe_load(files[name].read_text()) or {}
    if not isinstance(raw, dict):
        raise ProfileError(f"{where} must hold a mapping, not {type(raw).__name__}")
    return _build(Profile, {"name": name, **raw}, where=where)


def _build(cls, raw: dict, *, where: str):
    """Build dataclass ``cls`` from a mapping, checking keys, types and allowed values."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ProfileError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {key: _convert(hints[key], value, where=f"{where}: {key}") for key, value in raw.items()}
    missing = [f.name for f in fields.values() if f.name not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ProfileError(f"{where}: missing required key(s) {missing}")
    return cls(**kwargs)


def _convert(hint, value, *, where: str):
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ProfileError(f"{where} must be a mapping")
        return _build(hint, value, where=where)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ProfileError(f"{where}: {value!r} is not valid; valid values: {list(choices)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ProfileError(f"{where} must be a list")
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(hint, type) and not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ProfileError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value
