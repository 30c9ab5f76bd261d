"""portraitlib.identity: the dlib ResNet port with face-api's real weights (fetched with npm), the
ArcFace IR-SE50 architecture and loader, identity distances on real photos, gradients, errors."""
import functools
import importlib.util
import json
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from portraitlib import face_api, faces, identity

GRACE = Path(__file__).parent / "data" / "grace_hopper_512x512.jpg"
LFW = (0, 8, 12, 24)
"""skimage LFW faces (25x25) that MediaPipe finds once upscaled."""


@pytest.fixture(scope="module")
def dlib_net() -> identity.DlibResNet:
    """The port with face-api's weights from the study's cache (fetched with npm when absent)."""
    try:
        return identity.DlibResNet()
    except FileNotFoundError:
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed and face-api's weights are not cached")
        raise


def _variant(rgb: np.ndarray) -> np.ndarray:
    """The photo at 80 % size, 15 % brighter plus 8 levels."""
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (int(w * 0.8), int(h * 0.8)), interpolation=cv2.INTER_AREA)
    return np.clip(small.astype(np.float32) * 1.15 + 8, 0, 255).astype(np.uint8)


def _lfw(index: int) -> np.ndarray:
    """skimage's 25x25 LFW face upscaled to 160 px, padded to 320 px, as RGB uint8."""
    face = cv2.resize((data.lfw_subset()[index] * 255).astype(np.uint8), (160, 160), interpolation=cv2.INTER_CUBIC)
    return np.repeat(cv2.copyMakeBorder(face, 80, 80, 80, 80, cv2.BORDER_REPLICATE)[..., None], 3, axis=2)


@functools.cache
def aligned(key: str) -> torch.Tensor:
    """(3, 256, 256) FFHQ-aligned crop in [0, 1] of a photo named like 'grace', 'grace:mirror',
    'astronaut:variant' or 'lfw12:mirror'."""
    name, _, change = key.partition(":")
    photos = {"astronaut": data.astronaut, "grace": lambda: faces.load_photo(GRACE)}
    rgb = photos[name]() if name in photos else _lfw(int(name[3:]))
    rgb = {"": rgb, "mirror": rgb[:, ::-1], "variant": _variant(rgb)}[change]
    crop = faces.align_face(np.ascontiguousarray(rgb), size=256).image
    return torch.from_numpy(crop).permute(2, 0, 1).float() / 255


def _batch(keys) -> torch.Tensor:
    return torch.stack([aligned(k) for k in keys])


# --- weights ------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_fetch_with_npm(tmp_path):
    start = time.perf_counter()
    folder = face_api.face_api_weights(tmp_path)
    print(f"npm fetch: {time.perf_counter() - start:.1f} s")
    assert folder == tmp_path / "weights" / "face-api-1.7.15"
    assert sorted(p.name for p in folder.iterdir()) == sorted([face_api.FACE_API_MANIFEST, face_api.FACE_API_BIN])
    assert (folder / face_api.FACE_API_BIN).stat().st_size == face_api.FACE_API_BIN_SIZE
    assert face_api.face_api_weights(tmp_path) == folder  # cached: no second fetch
    assert len(face_api.load_face_api_weights(folder)) == 117  # 29 conv layers x 4 + fc


def test_every_manifest_weight_used_once(dlib_net):
    folder = face_api.face_api_weights()
    manifest = json.loads((folder / face_api.FACE_API_MANIFEST).read_text())
    names = [spec["name"] for group in manifest for spec in group["weights"]]
    state = face_api.load_face_api_weights(folder)
    assert len(state) == len(names)  # no two manifest names map to one parameter
    assert set(state) == set(dlib_net.state_dict())
    assert dlib_net.state_dict()["fc.weight"].shape == (128, 256)
    n_params = sum(p.numel() for p in dlib_net.parameters())
    print(f"{dlib_net.name}: {n_params:,} parameters")
    assert n_params == sum(int(np.prod(s["shape"])) for group in manifest for s in group["weights"])
    assert not any(p.requires_grad for p in dlib_net.parameters()) and not dlib_net.training


def test_truncated_bin_is_refused(dlib_net, tmp_path):
    source = face_api.face_api_folder()  # filled by the dlib_net fixture
    shutil.copy(source / face_api.FACE_API_MANIFEST, tmp_path)
    (tmp_path / face_api.FACE_API_BIN).write_bytes((source / face_api.FACE_API_BIN).read_bytes()[:3_000_000])
    with pytest.raises(RuntimeError, match="3,000,000 bytes, expected 6,444,032.*truncated"):
        identity.DlibResNet(weights_dir=tmp_path)


def test_no_npm_says_where_to_put_the_files(tmp_path, monkeypatch):
    monkeypatch.setattr(face_api.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError) as error:
        face_api.face_api_weights(tmp_path)
    message = str(error.value)
    for part in ("@vladmandic/face-api@1.7.15", face_api.FACE_API_MANIFEST, face_api.FACE_API_BIN,
                 str(tmp_path / "weights" / "face-api-1.7.15")):
        assert part in message


def test_npm_failure_is_explained(tmp_path, monkeypatch):
    def failing_npm(command, **kwargs):
        raise subprocess.CalledProcessError(1, command, stderr="npm error code E404")
    monkeypatch.setattr(face_api.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(face_api.subprocess, "run", failing_npm)
    with pytest.raises(RuntimeError, match="npm pack @vladmandic/face-api@1.7.15.*E404.*face-api-1.7.15"):
        face_api.face_api_weights(tmp_path)
    assert list((tmp_path / "weights").iterdir()) == []  # no temporary folder left behind


# --- identity on real photos --------------------------------------------------------------------


def _distances(net, pairs) -> list[float]:
    with torch.no_grad():
        return net.distance(_batch([a for a, _ in pairs]), _batch([b for _, b in pairs])).tolist()


def test_same_person_is_closer_than_different_people(dlib_net):
    same = [("astronaut", "astronaut:mirror"), ("astronaut", "astronaut:variant"),
            ("grace", "grace:mirror"), ("grace", "grace:variant")]
    different = [("astronaut", "grace"), ("astronaut:mirror", "grace"), ("astronaut", "grace:mirror"),
                 ("astronaut:variant", "grace:variant")]
    d_same, d_diff = _distances(dlib_net, same), _distances(dlib_net, different)
    print(f"{dlib_net.name} (1 - cos): same person {np.round(d_same, 4)}, different {np.round(d_diff, 4)}")
    # Measured: same 0.002-0.010, different 0.100-0.117 (dlib's 0.6 euclidean threshold ~ 0.09).
    assert max(d_same) < 0.03 and min(d_diff) > 0.06
    assert min(d_diff) > 4 * max(d_same)


def test_lfw_faces_are_closest_to_their_own_mirror(dlib_net):
    keys = [f"lfw{i}" for i in LFW]
    try:
        originals, mirrors = _batch(keys), _batch([f"{k}:mirror" for k in keys])
    except faces.NoFaceError as error:
        pytest.skip(f"an upscaled LFW face was not found: {error}")
    with torch.no_grad():
        e_orig, e_mirror = dlib_net.embed(originals), dlib_net.embed(mirrors)
    dist = 1 - e_orig @ e_mirror.T  # (original i, mirror j)
    print(f"LFW {LFW}: own mirror {np.round(dist.diagonal().numpy(), 4)}, "
          f"closest other {np.round((dist + torch.eye(len(LFW))).min(1).values.numpy(), 4)}")
    for i in range(len(LFW)):  # measured: own mirror 0.011-0.016, others >= 0.078
        others = torch.cat([dist[i, :i], dist[i, i + 1:]])
        assert dist[i, i] < 0.5 * others.min()


def test_gradients_reach_the_images(dlib_net):
    x = _batch(["astronaut"]).requires_grad_(True)
    loss = dlib_net.distance(x, _batch(["grace"])).mean()
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert x.grad[..., :20, :].abs().sum() == 0  # rows above dlib's chip do not matter


def test_embedding_of_any_size(dlib_net):
    image = aligned("grace")[None]
    big = torch.nn.functional.interpolate(image, size=(512, 512), mode="bilinear", align_corners=False)
    with torch.no_grad():
        e256, e512 = dlib_net.embed(image), dlib_net.embed(big)
    assert e256.shape == (1, 128) and torch.allclose(e256.norm(dim=1), torch.ones(1))
    assert identity.cosine_distance(e256, e512).item() < 0.005


def _dlib_models() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")  # its __init__ needs pkg_resources
    if spec is None:
        pytest.skip("face_recognition_models is not installed")
    return Path(spec.submodule_search_locations[0]) / "models"


def test_agrees_with_dlib(dlib_net):
    """Against dlib's own network (pip dlib-bin + face_recognition_models, not study dependencies)."""
    dlib = pytest.importorskip("dlib")
    models = _dlib_models()
    detector = dlib.get_frontal_face_detector()
    landmarks = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    network = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
    on_chip, on_ffhq = [], []
    for key in ("astronaut", "astronaut:mirror", "grace", "grace:mirror"):
        name, _, mirror = key.partition(":")
        rgb = data.astronaut() if name == "astronaut" else faces.load_photo(GRACE)
        rgb = np.ascontiguousarray(rgb[:, ::-1] if mirror else rgb)
        shape = landmarks(rgb, detector(rgb, 1)[0])
        reference = np.array(network.compute_face_descriptor(rgb, shape))
        chip = torch.from_numpy(dlib.get_face_chip(rgb, shape, 150, 0.25)).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            on_chip.append(np.linalg.norm(dlib_net(chip)[0].numpy() - reference))
            on_ffhq.append(np.linalg.norm(dlib_net(dlib_net.crop(aligned(key)[None]))[0].numpy() - reference))
    print(f"L2 to dlib's descriptors: on dlib's chips {np.round(on_chip, 4)}, "
          f"on FFHQ crops {np.round(on_ffhq, 4)}")
    assert np.mean(on_chip) < 0.06  # measured 0.037: the port (face-api's 8-bit weights)
    assert np.mean(on_ffhq) < 0.15  # measured 0.10: plus MediaPipe/FFHQ alignment vs dlib's


# --- ArcFace IR-SE50 ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def arcface_file(tmp_path_factory) -> tuple[Path, identity.ArcFaceIRSE50]:
    """A random IR-SE50 saved as a plain state dict, and the network that made it."""
    torch.manual_seed(0)
    net = identity.ArcFaceIRSE50()
    path = tmp_path_factory.mktemp("arcface") / identity.ARCFACE_FILE
    torch.save(net.state_dict(), path)
    return path, net


def test_arcface_layout_follows_the_published_file(arcface_file):
    _, net = arcface_file
    state = net.state_dict()
    assert len(net.body) == 24
    widths = [unit.res_layer[1].out_channels for unit in net.body]
    assert [widths.count(c) for c in (64, 128, 256, 512)] == [3, 4, 14, 3]
    assert state["input_layer.0.weight"].shape == (64, 3, 3, 3)
    assert state["output_layer.3.weight"].shape == (512, 512 * 7 * 7)
    assert state["body.23.res_layer.5.fc1.weight"].shape == (32, 512, 1, 1)
    assert state["body.3.shortcut_layer.0.weight"].shape == (128, 64, 1, 1)
    assert not any(k.startswith("body.0.shortcut_layer") for k in state)  # 64 -> 64: a max pool
    print(f"IR-SE50: {sum(p.numel() for p in net.parameters()):,} parameters")


def test_arcface_round_trip_through_from_file(arcface_file):
    path, net = arcface_file
    loaded = identity.ArcFaceIRSE50.from_file(path)
    assert loaded.name.startswith(f"arcface-ir-se50 ({identity.ARCFACE_FILE}, sha256 ")
    images = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        embedding = loaded.embed(images)
        torch.testing.assert_close(embedding, net.embed(images))
    assert embedding.shape == (1, 512)
    picked = identity.load_identity_net("arcface", arcface_file=path)
    assert picked.name == loaded.name


def test_arcface_errors(tmp_path):
    missing = tmp_path / identity.ARCFACE_FILE
    with pytest.raises(FileNotFoundError, match=identity.ARCFACE_FILE) as error:
        identity.ArcFaceIRSE50.from_file(missing)
    assert str(identity.arcface_path()) in str(error.value)
    torch.save({"input_layer.0.weight": torch.zeros(64, 3, 5, 5), "extra.weight": torch.zeros(1)}, missing)
    with pytest.raises(ValueError, match=r"missing keys \d+ .*unexpected keys 1 \['extra.weight'\]"
                                         r".*input_layer.0.weight \(64, 3, 5, 5\) != \(64, 3, 3, 3\)"):
        identity.ArcFaceIRSE50.from_file(missing)


def test_load_identity_net_falls_back_to_dlib(dlib_net, tmp_path):
    net = identity.load_identity_net("arcface", arcface_file=tmp_path / identity.ARCFACE_FILE)
    assert isinstance(net, identity.DlibResNet) and net.name == dlib_net.name
    assert "face-api@1.7.15" in net.name
    with pytest.raises(ValueError, match="prefer"):
        identity.load_identity_net("facenet")
