"""The 2D GAN training loop: determinism, resume after interruption, early stopping, augmentation."""
import pytest
import torch

from portraitlib.training.augment import diff_augment
from portraitlib.training.gan2d import GAN2DConfig, TrainSettings, build_2d, train_2d

TINY = GAN2DConfig(resolution=16, z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=8)


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(12, 3, 16, 16, generator=g)


def run(images, steps, **kwargs):
    torch.manual_seed(123)  # same initial weights for every run
    g, d = build_2d(TINY)
    settings = TrainSettings(steps=steps, batch=4, r1_every=2, checkpoint_every=kwargs.pop("checkpoint_every", 200),
                             eval_every=kwargs.pop("eval_every", 0), select_from=kwargs.pop("select_from", 0),
                             augment=True)
    return train_2d(g, d, images, settings=settings, seed=0, **kwargs)


def params(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_training_changes_weights_and_logs_losses(images):
    g_ema, log = run(images, 4)
    assert len(log["d_loss"]) == len(log["g_loss"]) == 4 and log["r1"][0] > 0
    torch.manual_seed(123)
    g0, _ = build_2d(TINY)
    assert not torch.allclose(params(g_ema), params(g0))


def test_resume_after_interruption_matches_an_uninterrupted_run(images, tmp_path):
    straight, _ = run(images, 6)
    ckpt = tmp_path / "state.pt"

    class Interrupt(Exception):
        pass

    calls = []

    def stop_after_checkpoint(_):
        calls.append(1)
        if len(calls) == 3:  # scored at steps 0, 2, 4: at 4 the checkpoint of step 3 exists, then the run dies
            raise Interrupt
        return 0.0

    with pytest.raises(Interrupt):
        run(images, 6, checkpoint=ckpt, checkpoint_every=3, eval_every=2, evaluate=stop_after_checkpoint)
    assert ckpt.exists()
    resumed, log = run(images, 6, checkpoint=ckpt, checkpoint_every=3)
    assert len(log["d_loss"]) == 6
    assert torch.allclose(params(resumed), params(straight), atol=1e-6)


def test_early_stopping_returns_the_best_evaluated_weights(images):
    scores = iter([4.0, 3.0, 1.0, 2.0, 5.0])
    best, log = run(images, 8, eval_every=2, evaluate=lambda g: next(scores))
    assert log["eval"] == [[0, 4.0], [2, 3.0], [4, 1.0], [6, 2.0], [8, 5.0]] and log["best_step"] == 4
    at_four, _ = run(images, 4)
    assert torch.allclose(params(best), params(at_four), atol=1e-6)


def test_diff_augment_is_seeded_and_changes_images():
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    a = diff_augment(x, generator=torch.Generator().manual_seed(1))
    b = diff_augment(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape and not torch.allclose(a, x)
    cut = diff_augment(torch.ones(2, 1, 16, 16), generator=torch.Generator().manual_seed(0), translation=0)
    assert (cut == 0).any(), "a cutout zeroes a square"


def test_the_starting_weights_can_win_early_stopping(images):
    torch.manual_seed(123)
    start, _ = build_2d(TINY)
    scores = iter([0.0, 1.0, 2.0])
    best, log = run(images, 4, eval_every=2, evaluate=lambda g: next(scores))
    assert log["best_step"] == 0
    # the synthesis weights are the untrained ones (w_avg is refreshed for the returned weights)
    assert torch.allclose(params(best.synthesis), params(start.synthesis))


def test_early_stopping_chooses_from_its_floor_on(images):
    """The start scores best, but a floor of 4 steps keeps it out: the best of steps 4-8 wins."""
    scores = iter([0.0, 1.0, 3.0, 2.0, 2.5])
    best, log = run(images, 8, eval_every=2, select_from=4, evaluate=lambda g: next(scores))
    assert [s for s, _ in log["eval"]] == [0, 2, 4, 6, 8], "the steps before the floor are still scored"
    assert log["best_step"] == 6
    at_six, _ = run(images, 6)
    assert torch.allclose(params(best), params(at_six), atol=1e-6)
    with pytest.raises(ValueError, match="select_from"):
        TrainSettings(steps=4, select_from=5)


def test_frozen_mapping_stays_put_and_the_mean_w_is_refreshed(images):
    torch.manual_seed(123)
    g, d = build_2d(TINY)
    mapping_before, synthesis_before = params(g.mapping).clone(), params(g.synthesis).clone()
    settings = TrainSettings(steps=3, batch=4, r1_every=2, freeze_mapping=True, zplus_prior=True)
    g_ema, _ = train_2d(g, d, images, settings=settings, seed=0)
    assert torch.equal(params(g.mapping), mapping_before)
    assert not torch.equal(params(g.synthesis), synthesis_before), "the synthesis network must train"
    assert g_ema.mapping.w_avg.abs().sum() > 0, "w_avg must describe the returned generator"


def test_frozen_noise_strengths_stay_put_while_the_convolutions_train(images):
    torch.manual_seed(123)
    g, d = build_2d(TINY)
    with torch.no_grad():  # S's noise strengths are trained (non-zero) ones
        for name, p in g.named_parameters():
            if name.endswith(".noise_strength"):
                p.fill_(0.1)
    strengths = {n: p.clone() for n, p in g.named_parameters() if n.endswith(".noise_strength")}
    weights = {n: p.clone() for n, p in g.synthesis.named_parameters() if n.endswith("conv1.weight")}
    train_2d(g, d, images, settings=TrainSettings(steps=3, batch=4, r1_every=2, freeze_noise=True), seed=0)
    assert strengths and all(torch.equal(p, strengths[n]) for n, p in g.named_parameters() if n in strengths)
    assert any(not torch.equal(p, weights[n]) for n, p in g.synthesis.named_parameters() if n in weights)
    train_2d(g, d, images, settings=TrainSettings(steps=3, batch=4, r1_every=2), seed=0)
    assert any(not torch.equal(p, strengths[n]) for n, p in g.named_parameters() if n in strengths)


def test_a_floor_no_scored_step_reaches_is_refused():
    with pytest.raises(ValueError, match="no scored step"):
        TrainSettings(steps=10, eval_every=4, select_from=9)
    assert TrainSettings(steps=10, eval_every=4, select_from=8).select_from == 8
