"""AgileGAN3D's W+ encoder of a frozen tri-plane generator: losses, the cycle term, and resume."""
import pytest
import torch

from portraitlib import cameras
from portraitlib.nets import configs
from portraitlib.nets.encoders import WPlusEncoder
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.profiles import EncoderConfig
from portraitlib.training.encoder3d import (as_wplus, code_spread, cycle_loss, mean_w_3d,
                                            train_wplus_3d)
from portraitlib.training.warm3d import frontal_labels


@pytest.fixture()
def data():
    g = torch.Generator().manual_seed(0)
    labels = cameras.labels_from_angles(torch.linspace(-20, 20, 4), torch.zeros(4))
    return torch.rand(4, 3, 32, 32, generator=g), labels


def nets():
    torch.manual_seed(3)
    g = TriPlaneGenerator(config=configs.SMOKE).eval()
    enc = WPlusEncoder(img_resolution=32, num_ws=g.num_ws_plus, w_dim=configs.SMOKE.w_dim, w_avg=mean_w_3d(g, n=64),
                       width=8, hidden=16)
    return enc, g


def flat(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_wplus_codes_repeat_the_last_code_for_super_resolution():
    _, g = nets()
    ws = torch.randn(2, g.num_ws, configs.SMOKE.w_dim)
    wp = as_wplus(g, ws)
    assert wp.shape == (2, g.num_ws_plus, configs.SMOKE.w_dim) and g.num_ws_plus == g.num_ws + 3
    assert torch.equal(wp[:, g.num_ws:], ws[:, -1:].expand(-1, 3, -1))
    c = cameras.labels_from_angles(torch.zeros(2), torch.zeros(2))
    same = g.synthesis(ws, c, deterministic=True)["image"]
    assert torch.allclose(g.synthesis(wp, c, deterministic=True)["image"], same)


def test_code_spread_is_zero_for_one_code_per_layer():
    w = torch.randn(3, 1, 8).expand(3, 17, 8)
    assert code_spread(w).item() == pytest.approx(0, abs=1e-10)
    assert code_spread(w + torch.randn(3, 17, 8)).item() > 0


def test_cycle_loss_is_zero_for_an_encoder_that_knows_the_codes(data):
    enc, g = nets()

    class Oracle(torch.nn.Module):  # returns the codes that made the renders
        def forward(self, images):
            return self.codes

    oracle = Oracle()
    rng = torch.Generator().manual_seed(0)
    z = torch.randn(2, configs.SMOKE.z_dim, generator=torch.Generator().manual_seed(0))
    oracle.codes = as_wplus(g, g.mapping(z, frontal_labels(2))).repeat(2, 1, 1)
    assert cycle_loss(oracle, g, data[1], n=2, views=2, generator_rng=rng).item() == pytest.approx(0, abs=1e-10)
    assert cycle_loss(enc, g, data[1], n=2, views=2, generator_rng=torch.Generator().manual_seed(0)).item() > 0


def test_trains_the_encoder_only_and_cycle_weight_zero_turns_the_term_off(data):
    enc, g = nets()
    g0, e0 = flat(g).clone(), flat(enc).clone()
    enc, log = train_wplus_3d(enc, g, *data, settings=EncoderConfig(steps=2, batch=2), seed=0)
    assert torch.equal(flat(g), g0) and not torch.equal(flat(enc), e0)
    assert log["cycle"][0] > 0 and log["reg"][0] >= 0 and len(log["loss"]) == 2
    enc, g = nets()
    _, log = train_wplus_3d(enc, g, *data, settings=EncoderConfig(steps=1, batch=2, cycle_weight=0), seed=0)
    assert log["cycle"] == [0.0]


def test_resumes_to_the_same_weights(data, tmp_path):
    settings = EncoderConfig(steps=4, batch=2, checkpoint_every=2)
    enc, g = nets()
    full, _ = train_wplus_3d(enc, g, *data, settings=settings, seed=0)
    path = tmp_path / "enc.resume.pt"
    enc, g = nets()
    train_wplus_3d(enc, g, *data, settings=EncoderConfig(steps=2, batch=2), seed=0, checkpoint=path)
    enc, g = nets()
    resumed, log = train_wplus_3d(enc, g, *data, settings=settings, seed=0, checkpoint=path)
    assert len(log["loss"]) == 4 and torch.allclose(flat(resumed), flat(full), atol=1e-5)


def test_an_encoder_with_the_wrong_number_of_codes_is_refused(data):
    _, g = nets()
    enc = WPlusEncoder(img_resolution=32, num_ws=g.num_ws, w_dim=configs.SMOKE.w_dim, w_avg=torch.zeros(32), width=8,
                       hidden=16)
    with pytest.raises(ValueError, match="W\\+ has"):
        train_wplus_3d(enc, g, *data, settings=EncoderConfig(steps=1), seed=0)
