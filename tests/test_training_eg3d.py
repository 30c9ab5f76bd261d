"""The tri-plane GAN training loop (EG3D recipe): it trains every part, regularises, and resumes."""
import pytest
import torch

from portraitlib import cameras
from portraitlib.nets import configs
from portraitlib.nets.discriminators import DiscriminatorConfig
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.training.eg3d import Train3DSettings, raw_like, train_3d

D_CONFIG = DiscriminatorConfig(img_resolution=32, channel_base=256, channel_max=16)


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    labels = cameras.labels_from_angles(torch.linspace(-30, 30, 6), torch.zeros(6))
    return torch.rand(6, 3, 32, 32, generator=g), labels


def run(data, steps, **kwargs):
    torch.manual_seed(7)
    G, D = TriPlaneGenerator(config=configs.SMOKE), D_CONFIG.build()
    settings = Train3DSettings(steps=steps, batch=2, r1_every=2, density_every=2, blur_fade_images=8,
                               checkpoint_every=kwargs.pop("checkpoint_every", 100),
                               eval_every=kwargs.pop("eval_every", 0), bf16=kwargs.pop("bf16", False))
    return train_3d(G, D, *data, settings=settings, seed=0, **kwargs), G, D


def flat(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_every_part_trains_and_the_regularisers_run(data):
    torch.manual_seed(7)
    start = TriPlaneGenerator(config=configs.SMOKE)
    (g_ema, log), G, _ = run(data, 3)
    assert len(log["d_loss"]) == 3 and log["r1"][0] > 0 and log["density"][0] > 0
    for part in ("backbone", "decoder", "superresolution"):
        assert not torch.equal(flat(getattr(G, part)), flat(getattr(start, part))), f"{part} did not train"
    assert not torch.equal(flat(g_ema), flat(G)), "the EMA copy lags the trained weights"


def test_resume_after_interruption_matches_an_uninterrupted_run(data, tmp_path):
    (straight, _), _, _ = run(data, 4)
    calls = []

    def die_on_third_call(_):
        calls.append(1)
        if len(calls) == 3:  # scored at steps 0, 1, 2: dies at 2, after the checkpoint of step 1
            raise KeyboardInterrupt
        return 0.0

    ckpt = tmp_path / "g3d.pt"
    with pytest.raises(KeyboardInterrupt):
        run(data, 4, checkpoint=ckpt, checkpoint_every=1, eval_every=1, evaluate=die_on_third_call)
    (resumed, log), _, _ = run(data, 4, checkpoint=ckpt)
    assert len(log["d_loss"]) == 4
    assert torch.allclose(flat(resumed), flat(straight), atol=1e-6)


def test_inputs_are_checked_and_reals_resized(data):
    images, labels = data
    with pytest.raises(ValueError, match="6 images but 5 labels"):
        train_3d(TriPlaneGenerator(config=configs.SMOKE), D_CONFIG.build(), images, labels[:5],
                 settings=Train3DSettings(steps=1), seed=0)
    assert raw_like(images, 16).shape == (6, 3, 16, 16)


def test_fakes_can_come_from_a_given_latent_sampler(data):
    calls = []

    def latents(n, rng):
        calls.append(n)
        return torch.zeros(n, configs.SMOKE.z_dim)

    run(data, 2, latents=latents)
    assert calls == [2, 2, 2, 2], "one draw for D's fakes and one for G's, per step"


def test_bf16_is_a_cuda_switch_that_leaves_cpu_runs_unchanged(data):
    """A profile's ``precision: bf16`` reaches the loop as ``settings.bf16``; off CUDA it changes
    nothing, so the CPU tables stay bit-identical."""
    (plain, _), _, _ = run(data, 2)
    (switched, _), _, _ = run(data, 2, bf16=True)
    assert torch.equal(flat(plain), flat(switched))



class SpyD(torch.nn.Module):
    """D that records the labels it is shown."""

    def __init__(self, d):
        super().__init__()
        self.d, self.shown = d, []

    def forward(self, img, c, **kwargs):
        self.shown.append(c.detach().clone())
        return self.d(img, c, **kwargs)


def test_an_unconditional_d_sees_zero_labels_and_fakes_use_their_own_cameras(data):
    """3DAvatarGAN's settings: D is shown only zero labels, G renders at ``fake_labels`` within
    ``ray_bounds``, and the regulariser is added to G's loss of the step's fakes."""
    images, labels = data
    torch.manual_seed(7)
    G, D = TriPlaneGenerator(config=configs.SMOKE), SpyD(D_CONFIG.build())
    fake_labels = cameras.labels_from_angles(torch.full((3,), 10.0), torch.zeros(3))
    seen_fakes = []

    def regulariser(fake, ws):
        seen_fakes.append((tuple(fake["image_depth"].shape), tuple(ws.shape)))
        return fake["image_depth"].mean() * 0

    settings = Train3DSettings(steps=2, batch=2, r1_every=2, density_every=0, d_conditioned=False,
                               ray_bounds=(2.0, 3.5))
    _, log = train_3d(G, D, images, labels, settings=settings, seed=0, fake_labels=fake_labels,
                      regulariser=regulariser)
    assert D.shown and all(c.abs().max() == 0 for c in D.shown)
    assert len(seen_fakes) == 2 and seen_fakes[0][0] == (2, 1, 16, 16) and len(log["regulariser"]) == 2
    D.shown.clear()
    conditioned = Train3DSettings(steps=1, batch=2, r1_every=2, density_every=0, swap_probability=0)
    train_3d(G, D, images, labels, settings=conditioned, seed=0, fake_labels=fake_labels)
    shown = torch.cat(D.shown)
    assert (shown == fake_labels[0]).all(1).any(), "a conditioned D sees the fakes' own cameras"
    assert (shown != fake_labels[0]).any(1).any(), "... and the reals' labels"
