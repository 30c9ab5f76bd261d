"""The restricted unpickler: reads official NVIDIA pickles without executing code stored in them.

Official pickles store each network as a call ``torch_utils.persistence.
_reconstruct_persistent_obj(meta)``, where ``meta['module_src']`` is the source of the defining
module (the official loader executes it) and ``meta['state']`` is the network's ``__dict__``. Our
:class:`RestrictedUnpickler` resolves that call to "return meta" and every other global through an
explicit allow-list (tensor rebuilders, OrderedDict, numeric numpy scalars, inert stand-ins for a
few plain classes); anything else raises :class:`ForbiddenGlobalError` before it can run.

Tensors pickled with plain ``pickle`` keep their storage as ``torch.storage._load_from_bytes(b)``
where ``b`` is a legacy ``torch.save`` of the storage; we read ``b`` with
``torch.load(weights_only=True)``, torch's own restricted loader.
"""
from __future__ import annotations

import _compat_pickle
import collections
import io
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch


class CheckpointError(Exception):
    """A checkpoint that cannot be loaded: corrupt, of the wrong architecture, or unsafe."""


class ForbiddenGlobalError(CheckpointError, pickle.UnpicklingError):
    """The pickle refers to a global outside the allow-list; nothing from the file was executed."""

    def __init__(self, global_name: str, path: str | None = None):
        self.global_name = global_name
        where = f" in {path}" if path else ""
        super().__init__(f"refusing to load: the pickle{where} refers to forbidden global {global_name!r} "
                         f"(not on the allow-list; nothing from the file was executed)")


class PersistentMeta(dict):
    """What ``_reconstruct_persistent_obj(meta)`` becomes: the meta dict itself (module_src is text)."""


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a dict with attribute access."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class InertObject:
    """Stand-in for a plain (non-persistent) class: keeps the pickled state, runs nothing."""

    pickled_name = ""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        self.__dict__["state"] = {}

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state if isinstance(state, dict) else {"_pickled_state": state}

    def __repr__(self) -> str:
        return f"<inert {self.pickled_name}>"


def _reconstruct_persistent_obj(meta: Any) -> PersistentMeta:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise CheckpointError(f"unexpected persistent-object record: {type(meta).__name__}")
    return PersistentMeta(meta)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None) -> torch.Tensor:
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise CheckpointError(f"tensor storage of unexpected type {type(storage).__name__}")
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, tuple(size), tuple(stride), False,
                                           collections.OrderedDict())  # hooks dropped


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise CheckpointError(f"parameter data of unexpected type {type(data).__name__}")
    return data


def _load_storage_from_bytes(data: bytes):
    if not isinstance(data, (bytes, bytearray)):
        raise CheckpointError("tensor storage record is not bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TypedStorage deprecation
            storage = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated blob or refused by torch's restricted loader
        raise CheckpointError(f"a tensor storage could not be read safely: {exc}") from exc
    if not isinstance(storage, (torch.TypedStorage, torch.UntypedStorage)):
        raise CheckpointError(f"tensor storage record holds a {type(storage).__name__}")
    return storage


_NUMERIC_KINDS = "biufc"


def _numpy_dtype(obj, align=False, copy=False):
    if not isinstance(obj, str):
        raise CheckpointError(f"numpy dtype from a {type(obj).__name__} is not allowed")
    dt = np.dtype(obj)
    if dt.kind not in _NUMERIC_KINDS:
        raise CheckpointError(f"numpy dtype {obj!r} is not numeric")
    return np.dtype(obj, align, copy)


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None:
        raise CheckpointError(f"numpy scalar of dtype {dtype!r} is not allowed")
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise CheckpointError("malformed numpy scalar")
    return np.frombuffer(bytes(data), dtype=dtype, count=1)[0].item()


def _codecs_encode(text, encoding="utf-8", errors="strict") -> bytes:
    """Protocol-2 pickles store bytes as ``_codecs.encode(str, 'latin1')``; only that form is allowed."""
    if not isinstance(text, str) or encoding.replace("-", "").lower() != "latin1":
        raise CheckpointError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin-1")


_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("_codecs", "encode"): _codecs_encode,  # bytes in protocol-2 pickles
    ("builtins", "set"): set,  # protocols < 4 pickle sets by reference to the type
    ("builtins", "frozenset"): frozenset,
}

_INERT_NAMES = (
    "training.triplane.OSGDecoder",
    "training.volumetric_rendering.renderer.ImportanceRenderer",
    "training.volumetric_rendering.ray_sampler.RaySampler",
    "training.volumetric_rendering.ray_marcher.MipRayMarcher2",
    "torch.nn.modules.module.Module",
    "torch.nn.modules.container.Sequential",
    "torch.nn.modules.container.ModuleList",
    "torch.nn.modules.container.ModuleDict",
    "torch.nn.modules.activation.Softplus",
    "torch.nn.modules.activation.ReLU",
    "torch.nn.modules.activation.LeakyReLU",
    "torch.nn.modules.activation.Sigmoid",
    "torch.nn.modules.activation.Tanh",
    "torch.nn.modules.linear.Linear",
    "torch.nn.modules.linear.Identity",
)
_INERT: dict[str, type] = {
    name: type(name.rsplit(".", 1)[1], (InertObject,), {"pickled_name": name, "__module__": __name__})
    for name in _INERT_NAMES
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only allow-listed globals (see the module docstring)."""

    def __init__(self, file, *, source: str | None = None):
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        # protocol < 3 pickles name Python 2 modules (__builtin__.set): map them as pickle itself does
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        key = f"{module}.{name}"
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if key in _INERT:
            return _INERT[key]
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)  # dtype constants
        raise ForbiddenGlobalError(key, self._source)

    def persistent_load(self, pid: Any) -> Any:
        raise CheckpointError("unexpected persistent id in a plain pickle (is this a torch.save file? "
                              "use load_eg3d_pth)")


def _require_file(path: Path, hint: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path.name!r} not found at {path}. {hint}")
    return path


def restricted_load(path: str | Path, *, hint: str = "") -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`; corrupt files raise CheckpointError."""
    path = _require_file(Path(path), hint)
    try:
        with open(path, "rb") as handle:
            return RestrictedUnpickler(handle, source=path.name).load()
    except CheckpointError:
        raise
    except Exception as exc:  # EOFError, UnpicklingError, struct / value errors from a damaged stream
        raise CheckpointError(f"{path.name} is truncated or corrupt ({type(exc).__name__}: {exc})") from exc

