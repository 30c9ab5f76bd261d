"""The weights of :class:`portraitlib.identity.DlibResNet`: face-api.js's port of dlib's ResNet face
descriptor, as the npm package ``@vladmandic/face-api@1.7.15`` (MIT) ships them - a TF.js weights
manifest plus one quantised ``.bin`` - fetched with ``npm pack`` on first use, checked by size
and SHA-256, decoded into the port's torch state dict.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

from portraitlib.cache import atomic_write_bytes
from portraitlib.paths import cache_dir

FACE_API_PACKAGE = "@vladmandic/face-api@1.7.15"
FACE_API_MANIFEST = "face_recognition_model-weights_manifest.json"
FACE_API_BIN = "face_recognition_model.bin"
FACE_API_BIN_SIZE = 6_444_032
FACE_API_BIN_SHA256 = "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589"
NPM_TIMEOUT_S = 300


def _torch_key(name: str) -> str:
    """face-api weight name -> this port's state-dict key: 'conv64_1/conv2/scale/biases' ->
    'conv64_1.conv2.scale.bias'; 'fc' -> 'fc.weight'."""
    *path, leaf = name.split("/")
    if not path:
        return f"{leaf}.weight"
    return ".".join(path + [{"filters": "weight", "weights": "weight", "biases": "bias"}.get(leaf, leaf)])


def _to_torch_layout(array: np.ndarray) -> torch.Tensor:
    """TF.js layouts to torch: conv filters (kh, kw, in, out) -> (out, in, kh, kw); dense
    (in, out) -> (out, in); vectors unchanged."""
    if array.ndim == 4:
        array = array.transpose(3, 2, 0, 1)
    elif array.ndim == 2:
        array = array.T
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _decode(buffer: bytes, offset: int, spec: dict) -> tuple[np.ndarray, int]:
    """One manifest entry's array, decoded from ``buffer`` at ``offset``; and the next offset.
    Quantised entries store uint8/uint16 ``q`` and mean ``q * scale + min``."""
    count = int(np.prod(spec["shape"], dtype=np.int64))
    quant = spec.get("quantization")
    dtype = np.dtype(quant["dtype"] if quant else spec["dtype"]).newbyteorder("<")
    if dtype.name not in ("uint8", "uint16", "float32"):
        raise ValueError(f"weight {spec['name']!r}: unsupported storage dtype {dtype.name}")
    values = np.frombuffer(buffer, dtype=dtype, count=count, offset=offset).astype(np.float32)
    if quant:
        values = values * np.float32(quant["scale"]) + np.float32(quant["min"])
    return values.reshape(spec["shape"]), offset + count * dtype.itemsize


def _read_verified_bin(path: Path) -> bytes:
    """The bytes of face-api's ``.bin``, after checking its size and SHA-256."""
    data = path.read_bytes()
    if len(data) != FACE_API_BIN_SIZE:
        raise RuntimeError(f"{path} has {len(data):,} bytes, expected {FACE_API_BIN_SIZE:,} "
                           f"(truncated or not from {FACE_API_PACKAGE}); delete it to fetch it again")
    if hashlib.sha256(data).hexdigest() != FACE_API_BIN_SHA256:
        raise RuntimeError(f"{path} has the right size but not the SHA-256 of {FACE_API_PACKAGE}'s "
                           f"{FACE_API_BIN}; delete it to fetch it again")
    return data


def load_face_api_weights(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    """:class:`DlibResNet`'s state dict from face-api's manifest and ``.bin`` in ``folder``.

    The manifest lists weight groups, each stored in the concatenation of its ``paths``; the
    entries lie one after another in manifest order. Raises if the ``.bin`` is not the expected
    file or if the entries do not use up the bytes exactly.
    """
    folder = Path(folder)
    manifest = json.loads((folder / FACE_API_MANIFEST).read_text())
    state: dict[str, torch.Tensor] = {}
    for group in manifest:
        if group["paths"] != [FACE_API_BIN]:
            raise ValueError(f"{folder / FACE_API_MANIFEST}: unexpected weight files {group['paths']}")
        buffer, offset = _read_verified_bin(folder / FACE_API_BIN), 0
        for spec in group["weights"]:
            array, offset = _decode(buffer, offset, spec)
            state[_torch_key(spec["name"])] = _to_torch_layout(array)
        if offset != len(buffer):
            raise ValueError(f"{folder / FACE_API_MANIFEST} describes {offset:,} bytes, "
                             f"the .bin has {len(buffer):,}")
    return state


def face_api_folder(root: str | os.PathLike | None = None) -> Path:
    """Where face-api's two weight files are kept: ``<cache>/weights/face-api-1.7.15``."""
    return Path(root if root is not None else cache_dir()) / "weights" / "face-api-1.7.15"


def face_api_weights(cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding face-api's manifest and ``.bin`` (under ``cache_dir``, default the
    study's cache); fetched with ``npm pack`` when absent. Raises :class:`FileNotFoundError`
    without npm and :class:`RuntimeError` when npm fails; both say where to put the files by hand.
    """
    folder = face_api_folder(cache_dir)
    if not all((folder / name).is_file() for name in (FACE_API_MANIFEST, FACE_API_BIN)):
        _fetch_face_api(folder)
    return folder


def _by_hand(folder: Path) -> str:
    return (f"get the npm package {FACE_API_PACKAGE} (e.g. `npm pack {FACE_API_PACKAGE}` elsewhere) "
            f"and copy its model/{FACE_API_MANIFEST} and model/{FACE_API_BIN} "
            f"({FACE_API_BIN_SIZE:,} bytes) into {folder}")


def _fetch_face_api(folder: Path) -> None:
    """``npm pack`` face-api into a temporary folder, take its two weight files out of the
    tarball, check the ``.bin`` and move both into ``folder`` atomically."""
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError(f"face-api weights are missing and npm is not on PATH: {_by_hand(folder)}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".face-api-") as tmp:
        try:
            subprocess.run([npm, "pack", FACE_API_PACKAGE], cwd=tmp, check=True, capture_output=True,
                           text=True, timeout=NPM_TIMEOUT_S)
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f"`npm pack {FACE_API_PACKAGE}` failed ({error.stderr.strip()[-500:]}); "
                               f"{_by_hand(folder)}") from error
        except subprocess.TimeoutExpired as error:
            raise RuntimeError(f"`npm pack {FACE_API_PACKAGE}` took over {NPM_TIMEOUT_S} s; "
                               f"{_by_hand(folder)}") from error
        tarballs = list(Path(tmp).glob("*.tgz"))
        if len(tarballs) != 1:
            raise RuntimeError(f"`npm pack {FACE_API_PACKAGE}` left no tarball; {_by_hand(folder)}")
        files = _extract_weights(tarballs[0])
    _check_fetched(files[FACE_API_BIN], folder)
    for name in (FACE_API_MANIFEST, FACE_API_BIN):
        atomic_write_bytes(folder / name, files[name])


def _check_fetched(data: bytes, folder: Path) -> None:
    if len(data) != FACE_API_BIN_SIZE or hashlib.sha256(data).hexdigest() != FACE_API_BIN_SHA256:
        raise RuntimeError(f"npm's {FACE_API_PACKAGE} holds a {FACE_API_BIN} of {len(data):,} bytes "
                           f"that is not the expected one; {_by_hand(folder)}")


def _extract_weights(tarball: Path) -> dict[str, bytes]:
    """The two weight files' bytes from an npm tarball, read by exact member name (nothing is
    written from the archive, so its paths cannot escape)."""
    files = {}
    with tarfile.open(tarball, "r:gz") as archive:
        for name in (FACE_API_MANIFEST, FACE_API_BIN):
            member = archive.getmember(f"package/model/{name}")
            if not member.isfile():
                raise RuntimeError(f"{tarball.name}: package/model/{name} is not a regular file")
            files[name] = archive.extractfile(member).read()
    return files
