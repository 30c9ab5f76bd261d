"""The z-space encoder of a tri-plane generator, and the supervised warm start."""
import pytest
import torch

from portraitlib import cameras
from portraitlib.nets import configs
from portraitlib.nets.encoders import HierarchicalVAEEncoder
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.training.warm3d import VAE3DSettings, encode_3d, train_vae_3d


@pytest.fixture()
def data():
    g = torch.Generator().manual_seed(0)
    labels = cameras.labels_from_angles(torch.linspace(-20, 20, 4), torch.zeros(4))
    return torch.rand(4, 3, 32, 32, generator=g), labels, 2.6 + 0.4 * torch.rand(4, 1, 32, 32, generator=g)


def nets():
    torch.manual_seed(3)
    return (HierarchicalVAEEncoder(img_resolution=32, num_ws=1, z_dim=configs.SMOKE.z_dim, width=8, hidden=16),
            TriPlaneGenerator(config=configs.SMOKE))


def flat(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_frozen_generator_stays_put_and_the_encoder_learns(data):
    enc, g = nets()
    g0, e0 = flat(g).clone(), flat(enc).clone()
    enc, log = train_vae_3d(enc, g, *data[:2], depth=data[2], settings=VAE3DSettings(steps=2, batch=2), seed=0)
    assert torch.equal(flat(g), g0) and not torch.equal(flat(enc), e0)
    assert len(log["loss"]) == 2 and log["depth"][0] > 0 and log["kl"][0] >= 0


def test_warm_start_trains_the_generator_and_codes_have_its_shape(data):
    enc, g = nets()
    g0 = flat(g).clone()
    enc, _ = train_vae_3d(enc, g, *data[:2], settings=VAE3DSettings(steps=2, batch=2, generator_lr=1e-3), seed=0)
    assert not torch.equal(flat(g), g0)
    assert not any(p.requires_grad for p in g.parameters()), "G is handed back frozen"
    assert encode_3d(enc, g, data[0]).shape == (4, g.num_ws, configs.SMOKE.w_dim)


def test_resumes_to_the_same_weights(data, tmp_path):
    settings = VAE3DSettings(steps=4, batch=2, generator_lr=1e-3, checkpoint_every=2)
    enc, g = nets()
    full, _ = train_vae_3d(enc, g, *data[:2], settings=settings, seed=0)
    enc, g = nets()
    path = tmp_path / "warm.resume.pt"
    train_vae_3d(enc, g, *data[:2], settings=VAE3DSettings(steps=2, batch=2, generator_lr=1e-3), seed=0,
                 checkpoint=path)
    enc, g = nets()
    resumed, log = train_vae_3d(enc, g, *data[:2], settings=settings, seed=0, checkpoint=path)
    assert len(log["loss"]) == 4
    assert torch.allclose(flat(resumed), flat(full), atol=1e-5)


def test_rejects_a_per_layer_encoder(data):
    enc = HierarchicalVAEEncoder(img_resolution=32, num_ws=3, z_dim=configs.SMOKE.z_dim, width=8, hidden=16)
    with pytest.raises(ValueError, match="num_ws=1"):
        train_vae_3d(enc, TriPlaneGenerator(config=configs.SMOKE), *data[:2], settings=VAE3DSettings(steps=1), seed=0)
