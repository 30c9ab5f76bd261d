"""portraitlib.faces on real photos: skimage's astronaut and LFW faces, Grace Hopper (tests/data)."""
import functools
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from portraitlib import cameras, faces

GRACE = Path(__file__).parent / "data" / "grace_hopper_512x512.jpg"
MESSI = [Path(p) for p in (os.environ.get("PORTRAITLIB_MESSI5", ""),
                           "/usr/share/doc/opencv-doc/examples/data/messi5.jpg") if p]
# MediaPipe's canonical face mesh (y up, z toward the viewer: EG3D world axes), landmarks used for pose.
CANONICAL = {33: (-4.445859, 2.663991, 3.173422), 263: (4.445859, 2.663991, 3.173422),
             152: (0.0, -9.403378, 4.264492), 10: (0.0, 8.261778, 4.481535)}


@functools.cache
def aligned(key: str) -> faces.AlignedFace:
    """Alignments shared between tests (each MediaPipe run costs ~50 ms)."""
    photos = {"astronaut": data.astronaut, "grace": lambda: faces.load_photo(GRACE)}
    name, _, mirrored = key.partition(":")
    rgb = photos[name]()
    return faces.align_face(rgb[:, ::-1] if mirrored else rgb)


def lfw_face(index: int) -> np.ndarray:
    """skimage's 25x25 LFW face ``index`` upscaled to 160 px and padded to 320 px, (320, 320) uint8."""
    face = cv2.resize((data.lfw_subset()[index] * 255).astype(np.uint8), (160, 160), interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(face, 80, 80, 80, 80, cv2.BORDER_REPLICATE)


def eye_centres(face: faces.AlignedFace) -> np.ndarray:
    """(2, 2) crop coordinates of the image-left and image-right eye."""
    return np.stack([face.landmarks[list(faces.LEFT_IRIS), :2].mean(0),
                     face.landmarks[list(faces.RIGHT_IRIS), :2].mean(0)])


@pytest.mark.parametrize("name", ["astronaut", "grace"])
def test_frontal_photo_gives_ffhq_crop_and_label(name):
    face = aligned(name)
    assert face.image.shape == (256, 256, 3) and face.image.dtype == np.uint8
    assert face.label.shape == (25,) and face.landmarks.shape == (478, 3)
    assert face.n_faces == 1 and face.notes == []
    assert abs(face.yaw) < 35 and abs(face.pitch) < 25 and abs(face.roll) < 10
    torch.testing.assert_close(face.label, cameras.labels_from_angles(face.yaw, face.pitch, face.roll)[0])
    torch.testing.assert_close(cameras.angles_from_labels(face.label)[0],
                               torch.tensor([face.yaw, face.pitch, face.roll]), atol=0.05, rtol=0)
    (lx, ly), (rx, ry) = eye_centres(face)
    assert 0.3 * 256 < ly < 0.5 * 256 and 0.3 * 256 < ry < 0.5 * 256
    assert abs((lx + rx) / 2 - 128) < 0.1 * 256 and lx < 128 < rx and abs(ly - ry) < 0.05 * 256


def test_crop_landmarks_match_a_fresh_detection_on_the_crop():
    face = aligned("astronaut")
    again = faces.detect_landmarks(face.image)[0]
    points = list(faces.LEFT_IRIS) + list(faces.RIGHT_IRIS) + [faces.MOUTH_LEFT, faces.MOUTH_RIGHT, 1]
    assert np.abs(again[points, :2] - face.landmarks[points, :2]).max() < 3


@pytest.mark.parametrize("name, pitch_tol", [("astronaut", 2.0), ("grace", 3.0)])
def test_mirrored_photo_negates_yaw_and_keeps_pitch(name, pitch_tol):
    # grace_hopper's mirror moves MediaPipe's pitch by 2.2 deg, hence its looser tolerance.
    face, mirrored = aligned(name), aligned(f"{name}:mirrored")
    assert abs(mirrored.yaw + face.yaw) < 3
    assert abs(mirrored.pitch - face.pitch) < pitch_tol


def test_turned_face_gives_yaw_of_the_right_sign():
    # LFW face 75 is turned toward image-left: we see more of the subject's left cheek.
    turned = lfw_face(75)
    assert faces.align_face(turned).yaw > 15
    assert faces.align_face(turned[:, ::-1]).yaw < -15


@pytest.mark.skipif(not any(p.is_file() for p in MESSI), reason="messi5.jpg (opencv-doc) not available")
def test_messi_turned_right_and_looking_down():
    path = next(p for p in MESSI if p.is_file())
    head = cv2.resize(faces.load_photo(path)[30:150, 160:280], None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    face, mirrored = faces.align_face(head), faces.align_face(head[:, ::-1])
    assert face.yaw < -10 and face.pitch > 10 and mirrored.yaw > 10 and mirrored.pitch > 10


@pytest.mark.parametrize("yaw, pitch, roll", [(0, 0, 0), (30, 0, 0), (-25, 15, 0), (10, -20, 8)])
@pytest.mark.parametrize("lean", [0.0, faces.PITCH_OFFSET])
def test_camera_angles_recover_the_orbit_camera_of_a_synthetic_head(yaw, pitch, roll, lean):
    """A canonical head whose forehead leans ``lean`` deg toward the viewer (as MediaPipe's do on
    level heads), seen by an orbit camera, gives that camera back."""
    c, s = np.cos(np.radians(lean)), np.sin(np.radians(lean))
    tilt = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]], dtype=torch.float64)
    cam2world = cameras.orbit_camera(yaw, pitch, roll, pivot=(0.0, 0.0, 0.0))[0].double()
    points = np.zeros((478, 3))
    for index, world in CANONICAL.items():  # world point -> camera coordinates (x right, y down, z away)
        world = tilt @ torch.tensor(world, dtype=torch.float64)
        points[index] = (cam2world[:3, :3].T @ (world - cam2world[:3, 3])).numpy()
    # 1 deg: the canonical chin-to-forehead line itself leans 0.7 deg toward the viewer.
    assert np.allclose(faces.camera_angles(points, pitch_offset=lean), (yaw, pitch, roll), atol=1.0)


@pytest.mark.parametrize("make", ["coffee", "chelsea"])
def test_photo_without_a_face_raises_no_face(make, tmp_path):
    path = tmp_path / f"{make}.png"
    Image.fromarray(getattr(data, make)()).save(path)
    with pytest.raises(faces.NoFaceError, match=f"{make}.png: no face found"):
        faces.align_face(path)


def test_unusable_files_raise_photo_error_naming_file_and_problem(tmp_path):
    text, truncated, tiny = tmp_path / "notes.jpg", tmp_path / "half.jpg", tmp_path / "tiny.png"
    text.write_text("not a photo\n")
    truncated.write_bytes(GRACE.read_bytes()[: GRACE.stat().st_size // 2])
    Image.fromarray((data.lfw_subset()[0] * 255).astype(np.uint8)).save(tiny)
    cases = {text: "not an image file", truncated: "truncated or corrupt", tmp_path / "missing.jpg": "no such file",
             tiny: "25x25 px, too small; the shorter side must be at least 64 px", tmp_path: "not a file"}
    for path, problem in cases.items():
        with pytest.raises(faces.PhotoError) as info:
            faces.align_face(path)
        assert str(path) in str(info.value) and problem in str(info.value)


@pytest.mark.parametrize("bad", [np.zeros((100, 100, 2), np.uint8), np.full((100, 100, 3), 255.0),
                                 np.zeros((100, 100, 3), np.int64), np.zeros((0, 0, 3)), "x" * 3, 5])
def test_bad_arrays_and_types_raise_photo_error(bad):
    with pytest.raises(faces.PhotoError):
        faces.load_photo(bad)


def test_other_modes_become_rgb_and_give_the_same_pose():
    rgb = data.astronaut()
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:50, :50, 3] = 0
    grey16 = (np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint32) * 257).astype(np.uint16)
    variants = {"L": Image.fromarray(rgb).convert("L"), "CMYK": Image.fromarray(rgb).convert("CMYK"),
                "RGBA": Image.fromarray(rgba), "I;16": Image.fromarray(grey16), "P": Image.fromarray(rgb).convert("P"),
                "float": rgb / 255.0}
    for mode, image in variants.items():
        loaded = faces.load_photo(image)
        assert loaded.shape == rgb.shape and loaded.dtype == np.uint8, mode
        assert abs(faces.align_face(image).yaw - aligned("astronaut").yaw) < 3, mode
    assert (faces.load_photo(variants["RGBA"])[:50, :50] == 255).all()  # transparent -> white
    assert np.abs(faces.load_photo(variants["L"]).astype(int) - np.asarray(variants["L"])[..., None]).max() == 0


def test_exif_orientation_is_applied(tmp_path):
    rgb, path = data.astronaut(), tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 deg clockwise to display"
    Image.fromarray(rgb).transpose(Image.Transpose.ROTATE_90).save(path, quality=95, exif=exif)
    assert np.abs(faces.load_photo(path).astype(int) - rgb).mean() < 5


def test_huge_photo_is_downscaled_with_a_note():
    huge = cv2.resize(data.astronaut(), (5000, 5000), interpolation=cv2.INTER_CUBIC)
    face = faces.align_face(huge)
    assert face.notes == ["image is 5000x5000 px; downscaled to 4096x4096 for face detection"]
    assert abs(face.yaw - aligned("astronaut").yaw) < 3 and abs(face.pitch - aligned("astronaut").pitch) < 3
    assert np.abs(face.image.astype(int) - aligned("astronaut").image).mean() < 12


@pytest.mark.parametrize("reverse", [False, True])
def test_two_faces_use_the_largest_with_a_note(reverse, monkeypatch):
    small = cv2.resize(faces.load_photo(GRACE), (180, 180), interpolation=cv2.INTER_AREA)
    canvas = np.full((340, 580, 3), 255, np.uint8)
    canvas[10:190, 10:190], canvas[10:330, 250:570] = small, data.astronaut()[:320, 80:400]
    if reverse:  # MediaPipe lists the big face first here; the choice must not depend on order
        detect = faces.detect_landmarks
        monkeypatch.setattr(faces, "detect_landmarks", lambda rgb: detect(rgb)[::-1])
    face = faces.align_face(canvas)
    assert face.n_faces == 2 and len(face.notes) == 1
    assert re.fullmatch(r"2 faces found; took the largest, at x=\d+,y=\d+,w=\d+,h=\d+ \(pixels of the photo\)",
                        face.notes[0])
    x, y, w, h = face.box  # the astronaut's face, in the canvas's right part
    assert 250 <= x and x + w <= 570 and 10 <= y and y + h <= 330
    assert np.abs(face.image.astype(int) - aligned("astronaut").image).mean() < 12
