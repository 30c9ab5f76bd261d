"""The style prior pipeline: clear errors for missing paper-profile files, and one tiny end-to-end
pass (S, encoders, S -> S_t, prior set in EG3D layout) on random images with a fake context."""
import dataclasses

import pytest
import torch

import portraitlib as pl
from portraitlib import cameras, metrics, study_data
from portraitlib.agilegan3d import style_prior
from portraitlib.profiles import StylePriorConfig, WorldConfig


class FakeIdentity(torch.nn.Module):
    """A differentiable stand-in for the identity net (the real one is tested in test_identity)."""

    name = "fake-identity"

    def distance(self, a, b):
        return (a - b).flatten(1).pow(2).mean(1)


class FakeRegressor:
    def labels(self, images):
        return cameras.labels_from_angles(torch.zeros(len(images)), torch.zeros(len(images)))


@pytest.fixture()
def ctx(tmp_path):
    profile = dataclasses.replace(
        pl.load_profile("smoke"), world=WorldConfig(image_size=32, n_train=6, n_test=4, n_exemplars=4, styles=("cartoon",)),
        style_prior=StylePriorConfig(z_dim=8, w_dim=16, channel_max=16, warm_start_steps=4, adversarial_steps=2,
                                     encoder_steps=2, transfer_steps=4, eval_every=2, batch=2, transfer_batch=2,
                                     unpaired_per_style=3))
    return pl.StudyContext(notebook="test", profile=profile, seed=0, device=torch.device("cpu"),
                           cache=pl.ArtifactCache(profile="test", seed=0, root=tmp_path))


def test_end_to_end_prior_set_in_eg3d_layout(ctx):
    g = torch.Generator().manual_seed(0)
    labels = cameras.labels_from_angles(torch.linspace(-20, 20, 6), torch.zeros(6))
    data = study_data.StudyImages(real_train=torch.rand(6, 3, 32, 32, generator=g), train_labels=labels,
                                   real_test=torch.rand(4, 3, 32, 32, generator=g), test_labels=labels[:4],
                                   exemplars={"cartoon": torch.rand(4, 3, 32, 32, generator=g)})
    nets = study_data.LossNets.of(perceptual=metrics.load_lpips("alex_or_random"), identity=FakeIdentity())
    S, source = style_prior.source_generator(ctx, data, nets, progress=False)
    assert source["gan_log"]["eval"][0][0] == 0, "the warm start itself is scored"
    enc, enc_art = style_prior.inversion_encoder(ctx, data, nets, S, source, kind="hvae", progress=False)
    seen = []
    S_t, transfer = style_prior.style_generator(ctx, data, nets, S, source, enc, style="cartoon", progress=False,
                                                diagnose=lambda images: seen.append(images.shape) or {"n": 1})
    assert len(seen) == len(transfer["log"]["eval"]) == 3  # steps 0, 2, 4
    folder = style_prior.prior_set(ctx, data, S_t, enc, S, style="cartoon", regressor=FakeRegressor(),
                                   transfer=transfer, encoder_artefact=enc_art, zplus_prior=True)
    prior = style_prior.load_prior(folder)
    assert prior["images"].shape == (9, 3, 32, 32)
    assert torch.equal(prior["pair_index"], torch.tensor([0, 1, 2, 3, 4, 5, -1, -1, -1]))
    assert torch.allclose(prior["labels"][:6], labels, atol=1e-6)
    assert prior["estimated_labels"].shape == (9, 25)
    # everything is cached: a second call builds nothing and gives the same generator
    again, _ = style_prior.style_generator(ctx, data, nets, S, source, enc, style="cartoon", progress=False,
                                           diagnose=lambda images: pytest.fail("rebuilt a cached artefact"))
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), S_t.state_dict().values()))


def test_paper_profile_names_missing_data_and_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTRAITLIB_CACHE", str(tmp_path))
    paper = pl.load_profile("paper")
    ctx = pl.StudyContext(notebook="t", profile=paper, seed=0, device=torch.device("cpu"),
                          cache=pl.ArtifactCache(profile="paper", seed=0, root=tmp_path))
    with pytest.raises(FileNotFoundError, match="celebahq_train"):
        study_data.load_images(ctx)
    with pytest.raises(FileNotFoundError, match=r"stylegan2-ffhq-1024x1024\.pkl not found"):
        style_prior.source_generator(ctx, data=None, nets=None)


def test_posterior_codes_draw_photos_and_mix_coarse_with_fine():
    from portraitlib.nets.encoders import HierarchicalVAEEncoder, layer_groups

    enc = HierarchicalVAEEncoder(img_resolution=32, num_ws=8, z_dim=4, width=8, hidden=8)
    codes = style_prior.PosteriorLatents(enc, torch.rand(5, 3, 32, 32))
    codes.mu = torch.arange(5.0).view(5, 1, 1).expand(5, 8, 4).clone()  # photo i's code is all i
    codes.sigma = torch.zeros_like(codes.mu)
    rng = torch.Generator().manual_seed(0)
    plain = codes(20, rng)
    assert all(row.unique().numel() == 1 for row in plain), "an unmixed draw is one photo's code"
    mixed = codes.mixed(200, rng)
    coarse = list(layer_groups(8)[0])
    rest = [i for i in range(8) if i not in coarse]
    assert all(m[coarse].unique().numel() == 1 and m[rest].unique().numel() == 1 for m in mixed)
    assert (mixed[:, coarse[0], 0] != mixed[:, rest[0], 0]).any(), "mixing combines two photos"


def test_cache_keys_follow_the_stages_a_setting_affects(ctx):
    later = dataclasses.replace(ctx, profile=dataclasses.replace(
        ctx.profile, style_prior=dataclasses.replace(ctx.profile.style_prior, transfer_steps=99)))
    assert style_prior._key(ctx, "source") == style_prior._key(later, "source")
    assert style_prior._key(ctx, "encoder") == style_prior._key(later, "encoder")
    assert style_prior._key(ctx, "transfer") != style_prior._key(later, "transfer")
    wider = dataclasses.replace(ctx, profile=dataclasses.replace(
        ctx.profile, style_prior=dataclasses.replace(ctx.profile.style_prior, channel_max=32)))
    assert all(style_prior._key(ctx, s) != style_prior._key(wider, s) for s in ("source", "encoder", "transfer"))


def test_official_source_gives_g_and_d_and_few_shot_transfer_runs(ctx, tmp_path):
    """The paper path of notebook 01: S and its discriminator from an NVlabs-format pickle (written
    here with fake official modules at a tiny size), then S -> S_t fine-tunes that D."""
    from portraitlib.training.gan2d import GAN2DConfig, build_2d
    from tests.official_format import Fakes, official_stylegan2, write

    fakes = Fakes(tmp_path / "EXECUTED")
    cfg = GAN2DConfig(resolution=32, z_dim=8, w_dim=16, mapping_layers=2, channel_base=512, channel_max=16,
                      conv_clamp=256.0)
    torch.manual_seed(0)
    g, d = build_2d(cfg)
    (tmp_path / "weights").mkdir()
    write(tmp_path / "weights" / "sg2.pkl", official_stylegan2(fakes, cfg, g, d))
    official = dataclasses.replace(ctx, profile=dataclasses.replace(ctx.profile, style_prior=dataclasses.replace(
        ctx.profile.style_prior, source_checkpoint=str(tmp_path / "weights" / "sg2.pkl"))))
    S, source = style_prior.source_generator(official, data=None, nets=None)
    assert source["source"] == "sg2.pkl" and source["gan_config"] == dataclasses.asdict(cfg)
    assert all(torch.equal(a, b) for a, b in zip(S.state_dict().values(), g.state_dict().values()))
    assert all(torch.equal(source["D"][k], v) for k, v in d.state_dict().items())
    gen = torch.Generator().manual_seed(0)
    data = study_data.StudyImages(real_train=torch.rand(6, 3, 32, 32, generator=gen),
                                   train_labels=cameras.labels_from_angles(torch.zeros(6), torch.zeros(6)),
                                   real_test=torch.rand(4, 3, 32, 32, generator=gen),
                                   test_labels=cameras.labels_from_angles(torch.zeros(4), torch.zeros(4)),
                                   exemplars={"cartoon": torch.rand(4, 3, 32, 32, generator=gen)})
    nets = study_data.LossNets.of(perceptual=metrics.load_lpips("alex_or_random"), identity=FakeIdentity())
    enc, _ = style_prior.inversion_encoder(official, data, nets, S, source, kind="hvae", progress=False)
    S_t, transfer = style_prior.style_generator(official, data, nets, S, source, enc, style="cartoon", progress=False)
    assert len(transfer["log"]["eval"]) == 3
    moved = [not torch.equal(a, b) for a, b in zip(S_t.state_dict().values(), S.state_dict().values())]
    assert any(moved), "few-shot transfer changed S_t"
    assert not (tmp_path / "EXECUTED").exists(), "nothing in the pickle was executed"
    small = dataclasses.replace(data, real_train=torch.rand(6, 3, 16, 16, generator=gen))
    with pytest.raises(ValueError, match="photos are 16 px but S renders 32 px"):
        style_prior.inversion_encoder(official, small, nets, S, source, kind="wplus", progress=False)


def test_released_s_world_gives_g_and_d_and_a_wrong_config_is_refused(ctx, tmp_path):
    """The mini path of notebook 01: S_world and its D from the study's own release (safetensors)."""
    from portraitlib.pretrain.card import Kind, write_release
    from portraitlib.training.gan2d import build_2d

    world = dataclasses.replace(ctx, profile=dataclasses.replace(ctx.profile, style_prior=dataclasses.replace(
        ctx.profile.style_prior, world_code=True)))
    cfg = style_prior.gan_config(world.profile)
    assert cfg.direct_resolution == 16 and not cfg.normalize_z and cfg.mapping_lr_multiplier == 1.0
    torch.manual_seed(0)
    g, d = build_2d(cfg)
    paths = write_release(tmp_path / "release", net=g, kind=Kind.S_WORLD, config=dataclasses.asdict(cfg),
                          card={"name": "S_world (test)", "description": "d", "quality": {}}, discriminator=d)
    released = dataclasses.replace(world, profile=dataclasses.replace(world.profile, style_prior=dataclasses.replace(
        world.profile.style_prior, source_checkpoint=str(paths["weights"]))))
    S, source = style_prior.source_generator(released, data=None, nets=None)
    assert source["source"] == "released release/S_world.safetensors" and not source["zplus_prior"]
    assert all(torch.equal(a, b) for a, b in zip(S.state_dict().values(), g.state_dict().values()))
    assert all(torch.equal(source["D"][k], v) for k, v in d.state_dict().items())
    wider = dataclasses.replace(released, profile=dataclasses.replace(released.profile, style_prior=dataclasses.replace(
        released.profile.style_prior, w_dim=32)))
    with pytest.raises(ValueError, match="retrain it"):
        style_prior.source_generator(wider, data=None, nets=None)
