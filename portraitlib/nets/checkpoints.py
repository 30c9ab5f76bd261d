"""Safe checkpoint loading: official EG3D / StyleGAN2 pickles, third-party ``.pth`` / ``.pt`` files,
and our own ``.safetensors``. Nothing here ever executes code stored in a file.

Official pickles are read by :mod:`portraitlib.nets.unpickle` (which defines the error classes,
re-exported here); the nested ``_parameters`` / ``_buffers`` / ``_modules`` of each network's state
are then walked into a flat state_dict. NVlabs StyleGAN2 pickles: :mod:`portraitlib.nets.stylegan2_official`;
rosinality ``.pt`` files: :mod:`portraitlib.nets.rosinality`.
"""
from __future__ import annotations

import argparse
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from portraitlib.cache import atomic_write_bytes
from portraitlib.nets.unpickle import (CheckpointError, ForbiddenGlobalError,  # noqa: F401 (re-exported)
                                       InertObject, PersistentMeta, _require_file, restricted_load)

EG3D_HINT = ("Download it from the official EG3D release (NVIDIA NGC catalog, 'eg3d' models; e.g. "
             "ffhq512-128.pkl) and put it at that path.")
IGNORED_KEYS = ("dataset_label_std",)  # a buffer official training registers on G (and so on G_ema)
_LIST_MAX = 20


class CheckpointMismatchError(CheckpointError):
    """A state_dict that does not fit a module: missing / unexpected names, shape mismatches."""

    def __init__(self, message: str, *, missing: list[str], unexpected: list[str],
                 shape_mismatches: list[tuple[str, tuple, tuple]]):
        super().__init__(message)
        self.missing, self.unexpected, self.shape_mismatches = missing, unexpected, shape_mismatches


@dataclass
class OfficialCheckpoint:
    """One network from a checkpoint, as a flat state_dict with official (= our) names.

    ``init_kwargs`` are the constructor kwargs recorded in the file (for StyleGAN2 files: converted
    to :class:`~portraitlib.nets.stylegan2.StyleGAN2Generator` kwargs, the originals in ``extras``).
    ``neural_rendering_resolution`` is None when the file does not say (ffhq512-128 uses 128).
    """

    state_dict: dict[str, torch.Tensor]
    init_kwargs: dict = field(default_factory=dict)
    rendering_kwargs: dict = field(default_factory=dict)
    neural_rendering_resolution: int | None = None
    which: str = "G_ema"
    class_name: str = ""
    extras: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# Walking persistent-object states into flat state_dicts.

def _module_state(obj: Any) -> dict | None:
    if isinstance(obj, PersistentMeta):
        state = obj.get("state")
        return state if isinstance(state, dict) else {}
    if isinstance(obj, InertObject):
        return obj.state
    return None


def flatten_module_state(state: dict, prefix: str = "") -> dict[str, torch.Tensor]:
    """Parameters and persistent buffers of a pickled module state (and its children), dotted names."""
    out: dict[str, torch.Tensor] = {}
    non_persistent = set(state.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is None or (group == "_buffers" and name in non_persistent):
                continue
            if not isinstance(value, torch.Tensor):
                raise CheckpointError(f"{prefix}{name} is a {type(value).__name__}, not a tensor")
            out[prefix + name] = value.detach()
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        child_state = _module_state(child)
        if child_state is None:
            raise CheckpointError(f"sub-module {prefix}{name} has unexpected type {type(child).__name__}")
        out.update(flatten_module_state(child_state, f"{prefix}{name}."))
    return out


def _plain(obj: Any) -> Any:
    """EasyDict / OrderedDict -> dict, recursively (lists and tuples kept)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_plain(v) for v in obj)
    return obj


def _class_name(meta: PersistentMeta) -> str:
    return str(meta.get("class_name", ""))


def _short(name: str) -> str:  # official files store the bare class name; accept dotted ones too
    return name.rsplit(".", 1)[-1]


def _init_kwargs(state: dict, positional: tuple[str, ...] = ()) -> dict:
    kwargs = _plain(state.get("_init_kwargs", state.get("init_kwargs", {})) or {})
    args = state.get("_init_args") or ()
    kwargs.update(dict(zip(positional, args)))
    return kwargs


def _pick_network(data: Any, which: str, path: Path) -> PersistentMeta:
    if not isinstance(data, dict) or which not in data:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path.name}: no network {which!r} in the checkpoint (found: {keys})")
    net = data[which]
    if not isinstance(net, PersistentMeta):
        raise CheckpointError(f"{path.name}: {which!r} is a {type(net).__name__}, not an official persistent network")
    return net


_EG3D_CLASSES = {"G_ema": "TriPlaneGenerator", "G": "TriPlaneGenerator", "D": "DualDiscriminator"}


def load_eg3d_pickle(path: str | Path, *, which: str = "G_ema") -> OfficialCheckpoint:
    """Read one network (``G_ema``, ``G`` or ``D``) of an official EG3D ``.pkl`` without running its code."""
    if which not in _EG3D_CLASSES:
        raise ValueError(f"which must be one of {sorted(_EG3D_CLASSES)}, got {which!r}")
    path = Path(path)
    net = _pick_network(restricted_load(path, hint=EG3D_HINT), which, path)
    got, want = _class_name(net), _EG3D_CLASSES[which]
    if _short(got) != want:
        hint = " (a StyleGAN2 file? use stylegan2_official.load_stylegan2_pickle)" if _short(got) == "Generator" else ""
        raise CheckpointError(f"{path.name}: wrong architecture: {which} is {got!r}, expected EG3D's {want!r}{hint}")
    state = net["state"] if isinstance(net.get("state"), dict) else {}
    init_kwargs = _init_kwargs(state)
    rendering = state.get("rendering_kwargs", init_kwargs.get("rendering_kwargs")) or {}
    nrr = state.get("neural_rendering_resolution")
    return OfficialCheckpoint(state_dict=flatten_module_state(state), init_kwargs=init_kwargs,
                              rendering_kwargs=_plain(rendering), which=which, class_name=got,
                              neural_rendering_resolution=int(nrr) if nrr is not None else None,
                              extras={"version": net.get("version")})


def _torch_load_weights(path: Path, hint: str) -> Any:
    path = _require_file(path, hint)
    safe = [argparse.Namespace]  # rosinality's train.py stores its args; a Namespace only holds attributes
    try:
        ctx = getattr(torch.serialization, "safe_globals", None)
        if ctx is not None:
            with ctx(safe):
                return torch.load(path, map_location="cpu", weights_only=True)
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if "weights_only" in msg.lower() or "unsupported global" in msg.lower():
            raise CheckpointError(f"{path.name} holds objects other than tensors and plain containers; refusing "
                                  f"to unpickle them: {msg.splitlines()[0]}") from exc
        raise CheckpointError(f"{path.name} is truncated or corrupt ({exc})") from exc
    except (EOFError, RuntimeError, ValueError, OSError) as exc:
        raise CheckpointError(f"{path.name} is truncated or corrupt ({type(exc).__name__}: {exc})") from exc


def load_eg3d_pth(path: str | Path, *, key: str = "G_ema") -> OfficialCheckpoint:
    """A third-party ``.pth`` with ``{'G_ema': state_dict}`` (optionally ``init_kwargs``,
    ``latent_avg`` -> extras). Load the result with ``strict=False`` and set the neural rendering
    resolution to 128 yourself when the file does not record it."""
    path = Path(path)
    data = _torch_load_weights(path, EG3D_HINT)
    if not isinstance(data, dict):
        raise CheckpointError(f"{path.name}: expected a dict, found {type(data).__name__}")
    sd = data.get(key, data if all(isinstance(v, torch.Tensor) for v in data.values()) else None)
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path.name}: no state_dict under {key!r} (keys: {sorted(map(str, data))[:10]})")
    init_kwargs = _plain(data.get("init_kwargs") or {})
    extras = {k: data[k] for k in ("latent_avg",) if k in data}
    nrr = data.get("neural_rendering_resolution")
    rendering = data.get("rendering_kwargs") or init_kwargs.get("rendering_kwargs") or {}
    return OfficialCheckpoint(state_dict=dict(sd), init_kwargs=init_kwargs, which=key, extras=extras,
                              rendering_kwargs=_plain(rendering),
                              neural_rendering_resolution=int(nrr) if nrr is not None else None)


# ----------------------------------------------------------------------------------------------
# Loading into modules; our own safetensors checkpoints.

def _listing(title: str, items: list[str]) -> str:
    shown = items[:_LIST_MAX]
    more = f"\n    ... and {len(items) - len(shown)} more" if len(items) > len(shown) else ""
    return f"  {title} ({len(items)}):\n" + "".join(f"    {s}\n" for s in shown).rstrip("\n") + more


def _mismatch_message(expected: dict[str, tuple], got: dict[str, tuple], *, ignore: tuple[str, ...] = IGNORED_KEYS,
                      check_missing: bool = True, check_unexpected: bool = True):
    missing = [k for k in expected if k not in got] if check_missing else []
    unexpected = [k for k in got if k not in expected and k not in ignore] if check_unexpected else []
    shapes = [(k, expected[k], got[k]) for k in expected if k in got and tuple(expected[k]) != tuple(got[k])]
    if not (missing or unexpected or shapes):
        return None
    parts = [f"{len(missing)} missing, {len(unexpected)} unexpected, {len(shapes)} shape mismatches"]
    if missing:
        parts.append(_listing("missing", missing))
    if unexpected:
        parts.append(_listing("unexpected", unexpected))
    if shapes:
        parts.append(_listing("shape mismatches",
                              [f"{k}: expected {tuple(e)} vs got {tuple(g)}" for k, e, g in shapes]))
    return "\n".join(parts), missing, unexpected, shapes


@dataclass
class LoadReport:
    missing: list[str]
    unexpected: list[str]


def load_into(module: nn.Module, state_dict: dict[str, torch.Tensor], *, strict: bool = True,
              ignore: tuple[str, ...] = IGNORED_KEYS) -> LoadReport:
    """Copy ``state_dict`` into ``module``. Shape mismatches always raise CheckpointMismatchError; with
    ``strict`` missing and unexpected names do too (names in ``ignore`` are skipped silently)."""
    own = module.state_dict()
    expected = {k: tuple(v.shape) for k, v in own.items()}
    got = {k: tuple(v.shape) for k, v in state_dict.items()}
    result = _mismatch_message(expected, got, ignore=ignore, check_missing=strict, check_unexpected=strict)
    if result is not None:
        text, missing, unexpected, shapes = result
        raise CheckpointMismatchError(f"state_dict does not fit {type(module).__name__}: {text}",
                                      missing=missing, unexpected=unexpected, shape_mismatches=shapes)
    module.load_state_dict({k: v for k, v in state_dict.items() if k in own}, strict=False)
    return LoadReport(missing=[k for k in own if k not in state_dict],
                      unexpected=[k for k in state_dict if k not in own and k not in ignore])


def save_safetensors(module: nn.Module | dict[str, torch.Tensor], path: str | Path, config: dict) -> Path:
    """Write ``module``'s state_dict to ``path`` (.safetensors) and ``config`` to ``path.with_suffix('.json')``,
    each atomically. The config is also kept in the safetensors metadata."""
    from safetensors.torch import save as st_save
    path = Path(path)
    text = json.dumps(config, sort_keys=True, indent=2)  # fails early if not JSON-able
    sd = module.state_dict() if isinstance(module, nn.Module) else module
    tensors = {k: v.detach().to("cpu").clone().contiguous() for k, v in sd.items()}
    atomic_write_bytes(path, st_save(tensors, metadata={"format": "portraitlib", "config": text}))
    atomic_write_bytes(path.with_suffix(".json"), (text + "\n").encode())
    return path


def load_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(state_dict, config) written by :func:`save_safetensors`."""
    from safetensors import safe_open
    from safetensors.torch import load as st_load
    path = _require_file(Path(path), "Our own checkpoints are written by save_safetensors.")
    try:
        sd = st_load(path.read_bytes())
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
    except Exception as exc:
        raise CheckpointError(f"{path.name} is truncated or corrupt ({type(exc).__name__}: {exc})") from exc
    sidecar = path.with_suffix(".json")
    text = sidecar.read_text() if sidecar.is_file() else meta.get("config")
    if text is None:
        raise CheckpointError(f"{path.name}: no config ({sidecar.name} is missing and the file holds none)")
    return sd, json.loads(text)
