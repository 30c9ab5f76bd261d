import pytest
import torch
from skimage.metrics import structural_similarity

from portraitlib import cameras, metrics


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
def no_alexnet(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(metrics, "_try_download_alexnet", lambda: None)


def test_lpips_without_weights_names_the_missing_file(no_alexnet, tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        metrics.load_lpips("alex")
    assert metrics.ALEXNET_FILE in str(info.value) and str(tmp_path) in str(info.value)
    with pytest.raises(ValueError, match="valid: alex, alex_or_random"):
        metrics.load_lpips("vgg")


def test_lpips_fallback_is_labelled_and_seeded(no_alexnet, pair):
    x, y = pair
    lp = metrics.load_lpips("alex_or_random")
    assert lp.name == "lpips_rand"
    d = lp(x, y)
    assert d.shape == (3,) and (d > 0).all() and torch.allclose(lp(x, x), torch.zeros(3), atol=1e-6)
    assert torch.allclose(metrics.load_lpips("alex_or_random")(x, y), d), "the random trunk is seeded"
    assert not torch.allclose(metrics.LPIPS(random_trunk=True, seed=1)(x, y), d)


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
