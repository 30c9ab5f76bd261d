"""NVlabs StyleGAN2 pickles (stylegan2-ada-pytorch, and stylegan3's StyleGAN2 models) -> our
:class:`~portraitlib.nets.stylegan2.StyleGAN2Generator` and :class:`~portraitlib.nets.discriminators.Discriminator`.

    G = load_stylegan2_pickle(path)              # G_ema: state_dict + our constructor kwargs
    D = load_stylegan2_pickle(path, which="D")   # the 'resnet' discriminator few-shot transfer fine-tunes

The official parameter names already are ours, so the state_dicts load as they are; the recorded
constructor kwargs are converted to ours (the originals stay in ``extras['official_init_kwargs']``)
and checked against the weights' shapes before anything is built. Nothing in the file is executed
(:mod:`portraitlib.nets.unpickle`). The TensorFlow release (``stylegan2-ffhq-config-f.pkl``) stores
``dnnlib.tflib`` networks, not PyTorch ones: it is refused with the name of the file to use instead.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from portraitlib.nets.checkpoints import (CheckpointError, OfficialCheckpoint, _class_name, _init_kwargs,
                                          _mismatch_message, _pick_network, _short, flatten_module_state)
from portraitlib.nets.discriminators import Discriminator
from portraitlib.nets.stylegan2 import StyleGAN2Generator
from portraitlib.nets.unpickle import ForbiddenGlobalError, restricted_load

STYLEGAN2_HINT = ("Download NVIDIA's PyTorch stylegan2-ffhq-1024x1024.pkl (NGC model nvidia/research/stylegan2, "
                  "listed by github.com/NVlabs/stylegan3) and put it at that path.")
TENSORFLOW_HINT = ("is a TensorFlow StyleGAN2 pickle (it stores {global_name}), which only TensorFlow 1.x code can "
                   "read. Use the PyTorch release of the same network instead: stylegan2-ffhq-1024x1024.pkl (NGC "
                   "model nvidia/research/stylegan2, listed by github.com/NVlabs/stylegan3), or convert yours with "
                   "stylegan2-ada-pytorch's legacy.py.")
_OFFICIAL_CLASSES = {"G_ema": "Generator", "G": "Generator", "D": "Discriminator"}
_POSITIONAL = {"Generator": ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"),
               "Discriminator": ("c_dim", "img_resolution", "img_channels")}


def _read(path: Path):
    try:
        return restricted_load(path, hint=STYLEGAN2_HINT)
    except ForbiddenGlobalError as exc:
        if exc.global_name.startswith("dnnlib.tflib"):
            raise CheckpointError(f"{path.name} " + TENSORFLOW_HINT.format(global_name=exc.global_name)) from exc
        raise


def _clamp(value) -> float | None:
    return None if value is None else float(value)


def generator_kwargs(official: dict) -> dict:
    """StyleGAN2Generator kwargs from an official ``Generator``'s recorded ones (KeyError if incomplete)."""
    synth = {**official, **(official.get("synthesis_kwargs") or {})}
    if synth.get("architecture", "skip") != "skip":
        raise CheckpointError(f"synthesis architecture {synth['architecture']!r}: only 'skip' is supported")
    return dict(z_dim=int(official["z_dim"]), w_dim=int(official["w_dim"]), c_dim=int(official.get("c_dim", 0)),
                img_resolution=int(official["img_resolution"]), img_channels=int(official.get("img_channels", 3)),
                channel_base=int(synth.get("channel_base", 32768)), channel_max=int(synth.get("channel_max", 512)),
                mapping_layers=int((official.get("mapping_kwargs") or {}).get("num_layers", 8)),
                conv_clamp=_clamp(synth.get("conv_clamp")))


def discriminator_kwargs(official: dict) -> dict:
    """Discriminator kwargs from an official ``Discriminator``'s recorded ones (KeyError if incomplete)."""
    if official.get("architecture", "resnet") != "resnet":
        raise CheckpointError(f"discriminator architecture {official['architecture']!r}: only 'resnet' is supported")
    epilogue = official.get("epilogue_kwargs") or {}
    cmap = official.get("cmap_dim")
    return dict(c_dim=int(official.get("c_dim", 0)), img_resolution=int(official["img_resolution"]),
                img_channels=int(official.get("img_channels", 3)),
                channel_base=int(official.get("channel_base", 32768)), channel_max=int(official.get("channel_max", 512)),
                mbstd_group_size=epilogue.get("mbstd_group_size", 4),
                mbstd_num_channels=int(epilogue.get("mbstd_num_channels", 1)),
                cmap_dim=None if cmap is None else int(cmap),
                mapping_layers=int((official.get("mapping_kwargs") or {}).get("num_layers", 8)),
                conv_clamp=_clamp(official.get("conv_clamp")))


def check_architecture(sd: dict[str, torch.Tensor], cls: type[nn.Module], kwargs: dict, name: str) -> None:
    """Raise CheckpointError unless ``cls(**kwargs)`` has exactly the names and shapes of ``sd``."""
    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in cls(**kwargs).state_dict().items()}
    except Exception as exc:
        raise CheckpointError(f"{name}: wrong architecture: cannot build {cls.__name__}({kwargs}): {exc}") from exc
    message = _mismatch_message(expected, {k: tuple(v.shape) for k, v in sd.items()})
    if message:
        raise CheckpointError(f"{name}: wrong architecture for {cls.__name__}({kwargs}):\n{message[0]}")


def load_stylegan2_pickle(path: str | Path, *, which: str = "G_ema") -> OfficialCheckpoint:
    """One network of an NVlabs StyleGAN2 ``.pkl``: ``G_ema`` / ``G`` (the 'skip' ``Generator``; a
    StyleGAN3 generator is refused) or ``D`` (the 'resnet' ``Discriminator``). ``init_kwargs`` are
    ours (:func:`generator_kwargs` / :func:`discriminator_kwargs`), checked against the weights."""
    if which not in _OFFICIAL_CLASSES:
        raise ValueError(f"which must be one of {sorted(_OFFICIAL_CLASSES)}, got {which!r}")
    path = Path(path)
    net = _pick_network(_read(path), which, path)
    got, want = _class_name(net), _OFFICIAL_CLASSES[which]
    if _short(got) != want:
        raise CheckpointError(f"{path.name}: wrong architecture: {which} is {got!r}, expected a StyleGAN2 {want!r}")
    state = net["state"] if isinstance(net.get("state"), dict) else {}
    sd = flatten_module_state(state)
    if want == "Generator" and "synthesis.b4.const" not in sd:
        raise CheckpointError(f"{path.name}: wrong architecture: no synthesis.b4.const (a StyleGAN3 generator?)")
    official = _init_kwargs(state, _POSITIONAL[want])
    convert, cls = ((generator_kwargs, StyleGAN2Generator) if want == "Generator" else
                    (discriminator_kwargs, Discriminator))
    try:
        ours = convert(official)
    except KeyError as exc:
        raise CheckpointError(f"{path.name}: {which}'s init_kwargs lack {exc}; cannot rebuild it") from exc
    except CheckpointError as exc:
        raise CheckpointError(f"{path.name}: wrong architecture: {exc}") from exc
    check_architecture(sd, cls, ours, path.name)
    return OfficialCheckpoint(state_dict=sd, init_kwargs=ours, which=which, class_name=got,
                              extras={"official_init_kwargs": official})
