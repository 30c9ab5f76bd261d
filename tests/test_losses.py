import pytest
import torch

from portraitlib import losses


def test_hinge_and_logistic_values():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert losses.hinge_d(real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0 + 1) / 2)
    assert losses.hinge_g(fake).item() == pytest.approx(1.0)
    sp = torch.nn.functional.softplus
    assert losses.nonsaturating_d(real, fake).item() == pytest.approx((sp(-real).mean() + sp(fake).mean()).item())
    assert losses.nonsaturating_g(torch.tensor([10.0])).item() < 1e-4


def test_r1_is_the_squared_input_gradient_over_both_images():
    w = torch.tensor([1.0, -2.0, 3.0])
    image = torch.randn(4, 3, requires_grad=True)
    raw = torch.randn(4, 3, requires_grad=True)
    logits = image @ w + 0.5 * (raw @ w)
    assert losses.r1_penalty(logits, [image, raw]).item() == pytest.approx(14.0 + 0.25 * 14.0)


def test_density_regularization_sees_rough_fields_only():
    g = torch.Generator().manual_seed(0)
    smooth = losses.density_regularization(lambda p: p[..., :1] * 2, batch=2, generator=g)
    rough = losses.density_regularization(lambda p: torch.sin(p[..., :1] * 3000), batch=2, generator=g)
    assert smooth.item() < 0.02 < rough.item()


def test_path_length_penalty_runs_and_tracks_the_mean():
    ws = torch.randn(4, 3, 8, requires_grad=True)
    images = (ws.sum(1) @ torch.randn(8, 3 * 4 * 4)).view(4, 3, 4, 4)
    penalty, mean = losses.path_length_penalty(images, ws, torch.tensor(0.0))
    assert penalty.item() >= 0 and mean.item() > 0
