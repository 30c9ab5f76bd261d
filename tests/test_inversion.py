"""Encoder training (AgileGAN's inversion and the joint warm start): it learns, it resumes."""
import dataclasses

import pytest
import torch

from portraitlib.nets.encoders import HierarchicalVAEEncoder, WPlusEncoder, mean_w
from portraitlib.training.gan2d import GAN2DConfig, build_2d
from portraitlib.training.inversion import (InversionSettings, encode, latent_loss, reconstruct, synthetic_bank,
                                            train_encoder)

TINY = GAN2DConfig(resolution=32, z_dim=8, w_dim=16, mapping_layers=1, channel_base=128, channel_max=16)


@pytest.fixture(scope="module")
def images():
    # four smooth blobs: easy targets whose reconstruction error must fall
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    blobs = [torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) * 4) for cx, cy in ((-.4, 0), (.4, 0), (0, -.4), (0, .4))]
    return torch.stack([torch.stack([b, 1 - b, 0.5 * b]) for b in blobs])


def setup(kind):
    torch.manual_seed(0)
    g = build_2d(TINY)[0]
    if kind == "hvae":
        enc = HierarchicalVAEEncoder(img_resolution=32, num_ws=g.num_ws, z_dim=8, width=8, hidden=32)
    else:
        enc = WPlusEncoder(img_resolution=32, num_ws=g.num_ws, w_dim=16, w_avg=mean_w(g), width=8, hidden=32)
    return g, enc


@pytest.mark.parametrize("kind", ["hvae", "wplus"])
def test_joint_training_reduces_reconstruction_error(images, kind):
    g, enc = setup(kind)
    before = (reconstruct(enc, g, images) - images).abs().mean()
    settings = InversionSettings(steps=60, batch=4, lr=3e-3, generator_lr=3e-3)
    enc, log = train_encoder(enc, g, images, settings=settings, seed=0)
    after = (reconstruct(enc, g, images) - images).abs().mean()
    assert after < 0.7 * before, (before, after)
    assert len(log["l1"]) == 60 and (kind == "wplus") == (max(log["kl"]) == 0)
    assert not any(p.requires_grad for p in g.parameters()), "the generator is handed back frozen"


def test_frozen_generator_is_not_changed(images):
    g, enc = setup("hvae")
    before = [p.detach().clone() for p in g.parameters()]
    train_encoder(enc, g, images, settings=InversionSettings(steps=3, batch=2), seed=0)
    assert all(torch.equal(a, b) for a, b in zip(before, g.parameters()))


def test_resume_matches_an_uninterrupted_run(images, tmp_path):
    settings = InversionSettings(steps=6, batch=2, generator_lr=1e-3, checkpoint_every=3)
    g, enc = setup("hvae")
    straight, _ = train_encoder(enc, g, images, settings=settings, seed=0)
    ckpt = tmp_path / "enc.pt"
    g, enc = setup("hvae")
    train_encoder(enc, g, images, settings=InversionSettings(steps=3, batch=2, generator_lr=1e-3, checkpoint_every=3),
                  seed=0, checkpoint=ckpt)
    g, enc = setup("hvae")  # a fresh process: weights come back from the checkpoint
    resumed, log = train_encoder(enc, g, images, settings=settings, seed=0, checkpoint=ckpt)
    assert len(log["l1"]) == 6
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_encode_refuses_unknown_encoders(images):
    g, _ = setup("hvae")
    with pytest.raises(TypeError, match="unknown encoder"):
        encode(torch.nn.Identity(), g, images)


@pytest.mark.parametrize("kind", ["hvae", "wplus"])
def test_synthetic_steps_learn_the_generators_own_codes(kind):
    g, enc = setup(kind)
    g.eval().requires_grad_(False)
    held_out = synthetic_bank(g, 64, shared=True, seed=7)
    probe = lambda: latent_loss(enc, g, *held_out).item()
    with torch.no_grad():
        before = probe()
    settings = InversionSettings(steps=0, synthetic_steps=80, synthetic_batch=16, synthetic_bank=256, lr=3e-3)
    enc, log = train_encoder(enc, g, torch.zeros(1, 3, 32, 32), settings=settings, seed=0)
    with torch.no_grad():
        after = probe()
    assert len(log["latent"]) == 80 and not log["l1"], "the synthetic phase never reads the photos"
    assert after < before - 0.1 if kind == "hvae" else after < 0.7 * before, (before, after)


def test_synthetic_phase_resumes_into_the_photo_phase(images, tmp_path):
    settings = InversionSettings(steps=3, synthetic_steps=3, synthetic_batch=4, synthetic_bank=8, batch=2,
                                 checkpoint_every=2)
    g, enc = setup("hvae")
    straight, _ = train_encoder(enc, g, images, settings=settings, seed=0)
    ckpt = tmp_path / "enc.pt"
    g, enc = setup("hvae")
    train_encoder(enc, g, images, seed=0, checkpoint=ckpt,
                  settings=dataclasses.replace(settings, steps=0))
    g, enc = setup("hvae")
    resumed, log = train_encoder(enc, g, images, settings=settings, seed=0, checkpoint=ckpt)
    assert len(log["latent"]) == 3 and len(log["l1"]) == 3
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="frozen generator"):
        train_encoder(enc, g, images, seed=0, settings=InversionSettings(steps=1, synthetic_steps=1, generator_lr=1e-3))
