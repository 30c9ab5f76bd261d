import json
import os
import pickle

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import portraitlib as pl  # noqa: E402
from portraitlib.cache import ArtifactCache, safe_torch_load  # noqa: E402
from portraitlib.paths import REPORTS_ENV  # noqa: E402


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    monkeypatch.setenv(REPORTS_ENV, str(tmp_path / "reports"))
    return pl.setup("99_test", profile="smoke", seed=7)


def test_record_carries_seed_profile_versions_and_commit(ctx):
    path = ctx.record({"loss": torch.tensor(0.5), "curve": [1, 2]})
    payload = json.loads(path.read_text())
    assert path.name == "99_test.json" and path.parent.name == "results"
    assert payload["values"] == {"loss": 0.5, "curve": [1, 2]}
    prov = payload["provenance"]
    assert prov["seed"] == 7 and prov["profile"] == "smoke"
    assert prov["versions"]["torch"] == torch.__version__.split("+")[0] or prov["versions"]["torch"]
    assert {"python", "torch", "numpy", "portraitlib"} <= set(prov["versions"])
    assert len(prov["git_commit"]) >= 7


def test_record_refuses_nan(ctx):
    with pytest.raises(ValueError, match="non-finite"):
        ctx.record({"loss": float("nan")})


def test_seed_fixes_random_draws(ctx):
    pl.seed_everything(3)
    a = torch.randn(4)
    pl.seed_everything(3)
    assert torch.equal(a, torch.randn(4))


def test_figures_are_byte_identical_across_saves(ctx):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    first = ctx.save_figure(fig, "line").read_bytes()
    second = ctx.save_figure(fig, "line").read_bytes()
    plt.close(fig)
    assert first == second and first[:8] == b"\x89PNG\r\n\x1a\n"


def test_cache_builds_once_and_roundtrips(tmp_path):
    cache = ArtifactCache(profile="smoke", seed=0, root=tmp_path)
    calls = []

    def build():
        calls.append(1)
        return {"weights": torch.arange(3.0)}

    first = cache.get_or_build("toy", {"width": 8}, build)
    second = cache.get_or_build("toy", {"width": 8}, build)
    assert len(calls) == 1 and torch.equal(first["weights"], second["weights"])
    assert cache.path("toy", {"width": 8}) != cache.path("toy", {"width": 16})
    assert cache.path("toy", {"width": 8}) != ArtifactCache(profile="smoke", seed=1, root=tmp_path).path("toy", {"width": 8})
    assert not list(tmp_path.rglob("*.tmp")), "atomic write left a temporary file"


def test_an_artefact_whose_key_holds_an_enum_loads_back_safely(tmp_path):
    from portraitlib.avatar3d.transfer import CameraSource

    config = {"cameras": CameraSource.ALIGNED, "bounds": (2.25, 3.3)}
    cache = ArtifactCache(profile="smoke", seed=0, root=tmp_path)
    cache.get_or_build("toy", config, lambda: {"weights": torch.ones(2)})
    loaded = ArtifactCache(profile="smoke", seed=0, root=tmp_path).get_or_build(
        "toy", config, lambda: pytest.fail("a stored artefact was built again"))
    assert loaded["config"] == {"cameras": "aligned", "bounds": [2.25, 3.3]} and torch.equal(loaded["weights"], torch.ones(2))
    assert cache.path("toy", config) == cache.path("toy", {"cameras": "aligned", "bounds": [2.25, 3.3]})


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cache_never_executes_code_in_a_file(tmp_path):
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"x": _Evil()}))
    with pytest.raises(pickle.UnpicklingError):
        safe_torch_load(path)


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    from portraitlib.cache import atomic_write_bytes

    atomic_write_bytes(tmp_path / "x.json", b"{}")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o666 & ~umask
