"""Real photos (users' selfies) to an FFHQ-aligned face crop and its EG3D 25-d camera label.

``align_face(path)`` loads the photo (any common mode, EXIF rotation applied), finds the face
landmarks with MediaPipe Face Mesh (478 points with irises), crops the face the way FFHQ was
aligned and estimates the head pose from the 3D landmarks. The pose is expressed as the EG3D
orbit camera that would see the head as the crop shows it (conventions in
:mod:`portraitlib.cameras`). Bad input raises :class:`PhotoError` (a ``ValueError``) with a message
that names the file and the problem.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from portraitlib import cameras

MIN_SIDE = 64
"""Shortest accepted photo side, pixels."""
MAX_SIDE = 4096
"""Photos whose longer side exceeds this are downscaled to it before detection."""
DETECT_SIDE = 1024
"""MediaPipe's detector sees the photo shrunk to 128 px without smoothing, and misses faces of
photos larger than this (of three side-by-side 512-px faces it finds two, at 1536 px wide): such
photos are searched again in a copy smoothly shrunk to this size, and the faces found only there
are added."""
LEFT_IRIS, RIGHT_IRIS = range(468, 473), range(473, 478)
"""MediaPipe iris landmarks (refined mesh): the eye on image-left, then on image-right."""
MOUTH_LEFT, MOUTH_RIGHT = 61, 291
EYE_OUTER_LEFT, EYE_OUTER_RIGHT, CHIN, FOREHEAD = 33, 263, 152, 10
PITCH_OFFSET = 7.0
"""Degrees by which MediaPipe's chin-to-forehead line leans toward the camera on a level, frontal
face (in its canonical mesh the line is upright to 0.7 deg, so this is how its depth predictions
behave). Measured as the raw pitch of frontal photos: astronaut 9.1, grace_hopper 6.9 (means of
the photo and its mirror), median of skimage's 96 LFW faces 6.3."""


class PhotoError(ValueError):
    """A photo that cannot be used: missing, unreadable, corrupt, too small or of odd shape."""


class NoFaceError(PhotoError):
    """A readable photo in which no face was found."""


@dataclasses.dataclass
class AlignedFace:
    """An FFHQ-aligned face crop and its camera."""

    image: np.ndarray
    """(size, size, 3) uint8 RGB crop."""
    label: torch.Tensor
    """(25,) EG3D label: cam2world flattened, then normalised intrinsics."""
    yaw: float
    """Camera yaw, degrees; positive: the subject's left cheek is turned toward the camera."""
    pitch: float
    """Camera pitch, degrees; positive: camera above the face, looking down."""
    roll: float
    """Camera roll about its viewing axis in the crop, degrees."""
    landmarks: np.ndarray
    """(478, 3): x, y in crop pixels; z (depth, away from the camera) in pixels of the photo as
    detected (downscaled if it was huge), unscaled by the crop."""
    n_faces: int
    """Faces found in the photo (the largest one is used)."""
    notes: list[str]
    """What was done that the caller may want to know (downscaling, several faces and which one
    was taken)."""
    box: tuple[int, int, int, int] | None = None
    """(x, y, w, h) of the face used: its landmarks' bounding box in the photo's pixels (as given,
    before any downscaling)."""


def _name(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, Image.Image):
        return getattr(source, "filename", "") or "PIL image"
    return "array" if isinstance(source, np.ndarray) else type(source).__name__


def _decode(image: Image.Image, name: str) -> Image.Image:
    """Decoded, upright (EXIF orientation applied) copy of ``image``."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception as exc:  # decoders raise many types (OSError, SyntaxError, struct.error...)
        raise PhotoError(f"{name}: truncated or corrupt image ({exc})") from None


def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise PhotoError(f"{path}: no such file")
    if not path.is_file():
        raise PhotoError(f"{path}: not a file")
    try:
        image = Image.open(path)
    except UnidentifiedImageError:
        raise PhotoError(f"{path}: not an image file (no known image format)") from None
    except Image.DecompressionBombError as exc:
        raise PhotoError(f"{path}: too many pixels to decode safely ({exc})") from None
    except OSError as exc:
        raise PhotoError(f"{path}: cannot read it ({exc})") from None
    with image:
        return _decode(image, str(path))


def _pil_to_array(image: Image.Image) -> np.ndarray:
    """(H, W), (H, W, 3) or (H, W, 4) array of any PIL mode: 16-bit modes become uint16."""
    if image.mode.startswith("I"):  # I, I;16, I;16B...: 16-bit greyscale stored as integers
        return np.clip(np.asarray(image.convert("I")), 0, 65535).astype(np.uint16)
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        return np.asarray(image.convert("RGBA"))
    return np.asarray(image if image.mode in ("RGB", "L") else image.convert("RGB"))


def _unit(array: np.ndarray, name: str) -> np.ndarray:
    """float32 copy of ``array`` in [0, 1] (uint8, uint16, bool or float already in [0, 1])."""
    if array.dtype in (np.uint8, np.uint16):
        return array.astype(np.float32) / np.iinfo(array.dtype).max
    if array.dtype == bool or (np.issubdtype(array.dtype, np.floating) and array.size
                                and np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
        return array.astype(np.float32)
    raise PhotoError(f"{name}: unsupported pixel values (dtype {array.dtype}); "
                     "use uint8, uint16 or floats in [0, 1]")


def _to_rgb(array: np.ndarray, name: str) -> np.ndarray:
    """(H, W, 3) uint8 of a grey, RGB or RGBA array (RGBA composited on white)."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise PhotoError(f"{name}: expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {array.shape}")
    if array.dtype == np.uint8 and array.shape[2] == 3:
        return np.ascontiguousarray(array)
    unit = _unit(array, name)
    if unit.shape[2] == 4:
        unit = unit[..., :3] * unit[..., 3:] + (1 - unit[..., 3:])
    return np.round(unit * 255).astype(np.uint8)


def load_photo(source) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a path (str or Path), PIL image or array (H, W[, 1|3|4]).

    Grey, palette, CMYK and 16-bit images become RGB; transparency is composited on white; the
    EXIF orientation of files is applied. Raises :class:`PhotoError` for missing, non-image,
    corrupt or too small (shorter side < ``MIN_SIDE``) input.
    """
    name = _name(source)
    if isinstance(source, (str, os.PathLike)):
        source = _open(Path(source))
    if isinstance(source, Image.Image):
        source = _pil_to_array(_decode(source, name))
    if not isinstance(source, np.ndarray):
        raise PhotoError(f"{name}: expected a path, PIL image or numpy array")
    rgb = _to_rgb(source, name)
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise PhotoError(f"{name}: image is {w}x{h} px, too small; the shorter side must be at least {MIN_SIDE} px")
    return rgb


def face_mesh():
    """MediaPipe's Face Mesh for still photos (up to 5 faces, refined eyes and lips), as a context
    manager: ``with face_mesh() as mesh: mesh.process(rgb)``; reuse one for many images."""
    from mediapipe.python.solutions import face_mesh as solution

    return solution.FaceMesh(static_image_mode=True, max_num_faces=5, refine_landmarks=True,
                             min_detection_confidence=0.5)


def detect_landmarks(rgb: np.ndarray, *, mesh=None) -> list[np.ndarray]:
    """MediaPipe Face Mesh landmarks of up to 5 faces in ``rgb`` (H, W, 3) uint8: a list of
    (478, 3) float arrays in pixels, x right, y down, z = depth (away from the camera) scaled
    like x. Empty when there is no face. ``mesh``: an open :func:`face_mesh` to reuse."""
    h, w = rgb.shape[:2]
    if mesh is None:
        with face_mesh() as mesh:
            result = mesh.process(np.ascontiguousarray(rgb))
    else:
        result = mesh.process(np.ascontiguousarray(rgb))
    return [np.array([(p.x * w, p.y * h, p.z * w) for p in face.landmark])
            for face in result.multi_face_landmarks or []]


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """(4, 2) crop corners (top-left, bottom-left, bottom-right, top-right) of the FFHQ
    alignment, from the eye centres (irises) and mouth corners of (478, >=2) landmarks."""
    eye_left, eye_right = landmarks[LEFT_IRIS, :2].mean(0), landmarks[RIGHT_IRIS, :2].mean(0)
    eye_avg, eye_to_eye = (eye_left + eye_right) / 2, eye_right - eye_left
    eye_to_mouth = (landmarks[MOUTH_LEFT, :2] + landmarks[MOUTH_RIGHT, :2]) / 2 - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x = x / np.hypot(*x) * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def _warp(rgb: np.ndarray, quad: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(crop (size, size, 3), 2x3 affine taking source pixel coordinates to crop ones); coordinates
    are continuous, pixel centres at +0.5."""
    affine = cv2.getAffineTransform(quad[[0, 1, 3]].astype(np.float32),
                                    np.float32([[0, 0], [0, size], [size, 0]])).astype(np.float64)
    shrink, steps = int(np.hypot(*(quad[3] - quad[0])) / size / 2), np.ones(2)
    if shrink > 1:  # like FFHQ: pre-shrink big faces so that the warp does not alias
        small = cv2.resize(rgb, (rgb.shape[1] // shrink, rgb.shape[0] // shrink), interpolation=cv2.INTER_AREA)
        rgb, steps = small, np.array(rgb.shape[1::-1]) / np.array(small.shape[1::-1])
    # cv2 maps pixel indices (centres at integers): source index i is at (i + 0.5) * step.
    matrix = affine.copy()
    matrix[:, :2] *= steps
    matrix[:, 2] += matrix[:, :2].sum(1) * 0.5 - 0.5
    crop = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return crop, affine


def _head_frame(points: np.ndarray, pitch_offset: float) -> np.ndarray:
    """(3, 3) rotation whose columns are the head's axes (the subject's left, up, the way the face
    looks) in camera coordinates (x right, y down, z away from the camera) of (478, 3) points;
    "up" is the chin-to-forehead direction tilted back (away from where the face looks) by
    ``pitch_offset`` degrees."""
    right = points[EYE_OUTER_RIGHT] - points[EYE_OUTER_LEFT]
    right /= np.linalg.norm(right)
    up = points[FOREHEAD] - points[CHIN]
    up -= (up @ right) * right
    up /= np.linalg.norm(up)
    frame = np.column_stack([right, up, np.cross(right, up)])
    c, s = math.cos(math.radians(pitch_offset)), math.sin(math.radians(pitch_offset))
    return frame @ np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


def camera_angles(points: np.ndarray, *, pitch_offset: float = PITCH_OFFSET) -> tuple[float, float, float]:
    """EG3D camera (yaw, pitch, roll) in degrees that sees the head of (478, 3) landmarks (pixels,
    x right, y down, z away from the camera, same scale on all axes) as the photo does.

    The head's axes are world axes (x: subject's left, y: up, z: where the face looks), so the
    frame maps world to camera and its transpose is cam2world's rotation (OpenCV camera axes on
    both sides). The camera sits on the sphere, opposite its viewing direction.
    """
    cam2world = torch.eye(4, dtype=torch.float64)
    cam2world[:3, :3] = torch.from_numpy(_head_frame(points, pitch_offset).T)
    cam2world[:3, 3] = -cameras.RADIUS * cam2world[:3, 2]
    yaw, pitch, roll = cameras.angles(cam2world, pivot=(0.0, 0.0, 0.0))[0].tolist()
    return yaw, pitch, roll


def _largest(candidates: list[np.ndarray]) -> np.ndarray:
    """The landmarks (478, 3) with the largest x-y bounding box."""
    return max(candidates, key=lambda f: np.prod(f[:, :2].max(0) - f[:, :2].min(0)))


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of the x-y bounding boxes of two (478, >=2) landmark sets."""
    low, high = np.maximum(a[:, :2].min(0), b[:, :2].min(0)), np.minimum(a[:, :2].max(0), b[:, :2].max(0))
    inter = np.prod(np.clip(high - low, 0, None))
    area = [np.prod(f[:, :2].max(0) - f[:, :2].min(0)) for f in (a, b)]
    return float(inter / max(area[0] + area[1] - inter, 1e-9))


def find_faces(rgb: np.ndarray) -> list[np.ndarray]:
    """:func:`detect_landmarks` of ``rgb`` (H, W, 3) uint8, plus, when its longer side exceeds
    ``DETECT_SIDE``, the faces found only in a copy smoothly shrunk to that size (their (478, 3)
    landmarks scaled back to ``rgb``'s pixels)."""
    found = detect_landmarks(rgb)
    h, w = rgb.shape[:2]
    if max(h, w) <= DETECT_SIDE:
        return found
    k = DETECT_SIDE / max(h, w)
    small = cv2.resize(rgb, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    sx, sy = w / small.shape[1], h / small.shape[0]
    for face in detect_landmarks(small):
        face = face * [sx, sy, sx]
        if all(_overlap(face, other) < 0.3 for other in found):
            found.append(face)
    return found


def align_face(source, *, size: int = 256) -> AlignedFace:
    """Detect the (largest) face in ``source`` (see :func:`load_photo`), crop it FFHQ-style to
    (size, size) and estimate its EG3D camera. Raises :class:`NoFaceError` if there is no face."""
    name, rgb, notes = _name(source), load_photo(source), []
    h, w = rgb.shape[:2]
    if max(h, w) > MAX_SIDE:
        k = MAX_SIDE / max(h, w)
        rgb = cv2.resize(rgb, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
        notes.append(f"image is {w}x{h} px; downscaled to {rgb.shape[1]}x{rgb.shape[0]} for face detection")
    faces = find_faces(rgb)
    if not faces:
        raise NoFaceError(f"{name}: no face found")
    points = _largest(faces)
    back = np.array([w / rgb.shape[1], h / rgb.shape[0]])  # to the photo's pixels, before any downscaling
    low, high = points[:, :2].min(0) * back, points[:, :2].max(0) * back
    x, y = (int(v) for v in np.floor(np.clip(low, 0, None)))
    box = (x, y, int(np.ceil(min(high[0], w))) - x, int(np.ceil(min(high[1], h))) - y)
    if len(faces) > 1:
        notes.append(f"{len(faces)} faces found; took the largest, at x={box[0]},y={box[1]},w={box[2]},h={box[3]}"
                     " (pixels of the photo)")
    crop, affine = _warp(rgb, ffhq_quad(points), size)
    landmarks = np.column_stack([points[:, :2] @ affine[:, :2].T + affine[:, 2], points[:, 2]])
    # Pose from the crop's view of the head (its roll is the crop's), depth scaled like x and y.
    scale = math.sqrt(abs(np.linalg.det(affine[:, :2])))
    yaw, pitch, roll = camera_angles(np.column_stack([landmarks[:, :2], landmarks[:, 2] * scale]))
    return AlignedFace(image=crop, label=cameras.labels_from_angles(yaw, pitch, roll)[0], yaw=yaw,
                       pitch=pitch, roll=roll, landmarks=landmarks, n_faces=len(faces), notes=notes,
                       box=box)
