"""Encoders into StyleGAN2's latent spaces: shapes, the KL term, z+ sampling and mapping."""
import torch

from portraitlib.nets.encoders import (HierarchicalVAEEncoder, WPlusEncoder, layer_groups, mean_w, sample_zplus,
                                       ws_from_zplus)
from portraitlib.training.gan2d import GAN2DConfig, build_2d

TINY = GAN2DConfig(resolution=32, z_dim=8, w_dim=16, mapping_layers=1, channel_base=128, channel_max=16)


def generator():
    torch.manual_seed(0)
    return build_2d(TINY)[0].eval()


def test_layer_groups_cover_every_layer_once_coarse_first():
    for n in (8, 10, 14, 17, 18):
        groups = layer_groups(n)
        assert [i for g in groups for i in g] == list(range(n))
        assert all(len(g) > 0 for g in groups)


def test_hierarchical_vae_shapes_and_kl():
    g = generator()
    enc = HierarchicalVAEEncoder(img_resolution=32, num_ws=g.num_ws, z_dim=8, width=8, hidden=16)
    mu, logvar = enc(torch.rand(3, 3, 32, 32))
    assert mu.shape == logvar.shape == (3, g.num_ws, 8)
    zero = torch.zeros(2, g.num_ws, 8)
    assert torch.allclose(HierarchicalVAEEncoder.kl(zero, zero), torch.zeros(2)), "the prior has no KL to itself"
    assert (HierarchicalVAEEncoder.kl(zero + 1, zero) > 0).all()
    rng = torch.Generator().manual_seed(0)
    z = HierarchicalVAEEncoder.sample(zero, torch.full_like(zero, -30.0), generator=rng)
    assert z.abs().max() < 1e-5, "a vanishing variance samples the mean"


def test_wplus_encoder_starts_near_the_mean_w():
    g = generator()
    w_avg = mean_w(g)
    enc = WPlusEncoder(img_resolution=32, num_ws=g.num_ws, w_dim=16, w_avg=w_avg, width=8, hidden=16)
    ws = enc(torch.rand(2, 3, 32, 32))
    assert ws.shape == (2, g.num_ws, 16)
    assert (ws - w_avg).abs().mean() < w_avg.abs().mean() + 1.0


def test_shared_zplus_reproduces_stylegan_sampling():
    g = generator()
    z = sample_zplus(4, num_ws=g.num_ws, z_dim=8, shared=True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(z[:, 0], z[:, -1])
    with torch.no_grad():
        assert torch.allclose(g.synthesis(ws_from_zplus(g.mapping, z)), g(z[:, 0]), atol=1e-5)
    independent = sample_zplus(4, num_ws=g.num_ws, z_dim=8, shared=False, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(independent[:, 0], independent[:, 1])
