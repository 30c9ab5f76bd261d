"""Notebooks 02-03 end to end on random images: the pretrained G (warm start, EG3D recipe, encoder),
the training sets of Table 3, transfer runs and the stylization error, all cached."""
import dataclasses

import pytest
import torch

import portraitlib as pl
from portraitlib import cameras, generator3d, metrics, portrait, study_data
from portraitlib.agilegan3d import cycle_encoder, guided_transfer, prior_transfer
from portraitlib.profiles import EG3DConfig, EncoderConfig, GuidedConfig, TransferConfig, WorldConfig
from tests.test_device import tiny_data
from tests.test_style_prior import FakeIdentity, FakeRegressor


@pytest.fixture()
def ctx(tmp_path):
    profile = dataclasses.replace(
        pl.load_profile("smoke"), world=WorldConfig(image_size=32, n_train=6, n_test=4, n_exemplars=4, styles=("cartoon",)),
        eg3d=EG3DConfig(generator="smoke", warm_start_steps=2, adversarial_steps=2, baseline_steps=2, encoder_steps=2,
                        eval_every=1, batch=2, blur_fade_images=4),
        transfer=TransferConfig(steps=2, batch=2, eval_every=1, ablation_style="cartoon", subset_sizes=(2, 4)),
        encoder=EncoderConfig(steps=2, batch=2), guided=GuidedConfig(batch=2))
    return pl.StudyContext(notebook="test", profile=profile, seed=0, device=torch.device("cpu"),
                           cache=pl.ArtifactCache(profile="test", seed=0, root=tmp_path))


@pytest.fixture()
def data():
    return tiny_data()


@pytest.fixture()
def nets():
    return study_data.LossNets.of(perceptual=metrics.load_lpips("alex_or_random"), identity=FakeIdentity())


def test_pretrained_generator_stages_and_cache(ctx, data, nets):
    G, D, E, art = generator3d.pretrained(ctx, data, nets, progress=False)
    assert set(art["logs"]) == {"warm", "gan", "encoder"}
    assert art["logs"]["gan"]["eval"][0][0] == 0, "the warm start itself is scored"
    assert len(art["logs"]["warm"]["loss"]) == 2 and art["logs"]["warm"]["depth"][0] > 0
    assert not any(p.requires_grad for p in G.parameters())
    assert not list(ctx.cache.root.rglob("*.resume.pt")), "resumable states are dropped once cached"
    again = generator3d.pretrained(ctx, data, nets, progress=False)[0]
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), G.state_dict().values()))
    baseline = generator3d.pure_adversarial(ctx, data, nets, steps=2, progress=False)
    assert [s for s, _ in baseline["log"]["eval"]] == [0, 1, 2]


def test_images_of_another_size_are_refused_or_resized(ctx, data, nets):
    big = generator3d.at_resolution(data, 64)
    assert big.real_train.shape[-1] == 64 and big.train_depth.shape[-1] == 64
    with pytest.raises(ValueError, match="at_resolution"):
        generator3d.pretrained(ctx, big, nets, progress=False)


def test_training_sets_of_table3(ctx, data):
    images = torch.rand(8, 3, 32, 32)
    labels = cameras.labels_from_angles(torch.linspace(-10, 10, 8), torch.zeros(8))
    prior = {"images": images, "labels": labels, "estimated_labels": labels.flip(0)}
    sets = prior_transfer.training_sets(ctx, prior, exemplars=data.exemplars["cartoon"], regressor=FakeRegressor(),
                                        ablation=True)
    assert list(sets) == ["prior_full", "exemplars", "prior_2", "prior_4", "prior_full_estimated"]
    small, large = sets["prior_2"], sets["prior_4"]
    assert torch.equal(large.images[:2], small.images), "subsets are nested"
    rows = [int((images == img).flatten(1).all(1).nonzero()) for img in large.images]
    assert torch.equal(large.labels, labels[rows]), "subset rows keep their own labels"
    assert torch.equal(sets["prior_full_estimated"].labels, prior["estimated_labels"])
    assert list(prior_transfer.training_sets(ctx, prior, exemplars=images, regressor=FakeRegressor(), ablation=False)) == ["prior_full"]
    with pytest.raises(ValueError, match="holds only"):
        prior_transfer.training_sets(dataclasses.replace(ctx, profile=dataclasses.replace(
            ctx.profile, transfer=TransferConfig(subset_sizes=(20,)))), prior, exemplars=images,
            regressor=FakeRegressor(), ablation=True)


def test_transfer_run_is_scored_cached_and_keeps_its_last_weights(ctx, data, nets):
    G, D, E, art = generator3d.pretrained(ctx, data, nets, progress=False)
    tset = prior_transfer.TrainingSet("prior_full", data.exemplars["cartoon"], data.train_labels[:4], "test set")
    scorer = prior_transfer.StylizationError(codes=prior_transfer.zspace_codes(E, data.real_test), labels=data.test_labels,
                                             targets={"x_s": data.real_test.flip(-1)}, perceptual=nets.perceptual)
    g_t, run = prior_transfer.transfer(ctx, G, D, art, tset, style="cartoon", prior_key="v1", evaluate=scorer,
                                       progress=False)
    assert len(run["evaluations"]) == 3 and run["log"]["best_step"] is not None
    assert run["evaluations"][0]["score"] == pytest.approx(scorer(G)["score"], abs=1e-6), "step 0 is the pretrained G"
    assert run["evaluations"][-1]["score"] == pytest.approx(scorer(g_t)["score"], abs=1e-5), "the last weights are kept"
    assert not all(torch.equal(a, b) for a, b in zip(g_t.state_dict().values(), G.state_dict().values()))
    again, _ = prior_transfer.transfer(ctx, G, D, art, tset, style="cartoon", prior_key="v1",
                                       evaluate=lambda g: pytest.fail("rebuilt a cached run"), progress=False)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), g_t.state_dict().values()))
    with pytest.raises(ValueError, match="px"):
        prior_transfer.transfer(ctx, G, D, art, dataclasses.replace(tset, images=torch.rand(4, 3, 64, 64)), style="cartoon",
                                prior_key="v1", progress=False)


def test_paper_profile_names_the_missing_eg3d_checkpoint(tmp_path, monkeypatch, nets):
    paper = pl.load_profile("paper")
    ctx = pl.StudyContext(notebook="t", profile=paper, seed=0, device=torch.device("cpu"),
                          cache=pl.ArtifactCache(profile="paper", seed=0, root=tmp_path))
    data = study_data.StudyImages(real_train=torch.rand(1, 3, 512, 512), train_labels=torch.zeros(1, 25),
                                   real_test=torch.rand(1, 3, 512, 512), test_labels=torch.zeros(1, 25), exemplars={})
    with pytest.raises(FileNotFoundError, match="ffhq512-128.pkl"):
        generator3d.pretrained(ctx, data, nets, progress=False)


def test_wplus_encoders_guided_transfer_and_the_stylizer(ctx, data, nets):
    G, D, _, art = generator3d.pretrained(ctx, data, nets, progress=False)
    E, enc_art = cycle_encoder.wplus_encoder(ctx, data, nets, G, art, cycle=True, progress=False)
    _, no_cycle = cycle_encoder.wplus_encoder(ctx, data, nets, G, art, cycle=False, progress=False)
    assert no_cycle["log"]["cycle"] == [0.0, 0.0] and enc_art["log"]["cycle"][0] > 0
    codes = cycle_encoder.encode(E, data.real_test)
    assert codes.shape == (4, G.num_ws_plus, G.config.w_dim)
    scores = cycle_encoder.inversion_scores(codes, G, data.real_test, data.test_labels, nets)
    assert 0 <= scores["ssim"] <= 1 and scores["renders"].shape == data.real_test.shape
    near = cycle_encoder.distance_from_w(codes, G, n=16)
    assert near["nearest_w"] > 0 and near["nearest_w_reference"] > 0

    prior = {"images": data.exemplars["cartoon"], "labels": data.train_labels[:4],
             "pair_index": torch.tensor([2, 0, -1, 5]), "estimated_labels": data.train_labels[:4]}
    tset = prior_transfer.training_sets(ctx, prior, exemplars=data.exemplars["cartoon"], regressor=FakeRegressor(),
                                        ablation=False)["prior_full"]
    photo_codes = cycle_encoder.encode(E, data.real_train)
    guide = guided_transfer.make_guide(ctx, prior, tset, photo_codes, nets=nets, encoder_art=enc_art)
    assert torch.equal(guide.codes, photo_codes[[2, 0, 5]]) and torch.equal(guide.targets, prior["images"][[0, 1, 3]])
    g_plain, _ = prior_transfer.transfer(ctx, G, D, art, tset, style="cartoon", prior_key="v1", progress=False)
    g_guided, run = prior_transfer.transfer(ctx, G, D, art, tset, style="cartoon", prior_key="v1", guide=guide,
                                            progress=False)
    assert all(v > 0 for v in run["log"]["guide"]), "the guide is part of every G step"
    assert not all(torch.equal(a, b) for a, b in zip(g_plain.state_dict().values(), g_guided.state_dict().values()))

    stylizer = portrait.Stylizer(encoder=E, generators={"cartoon": g_guided}, provenance={})
    out = stylizer.render(data.real_test[:2], style="cartoon", labels=cameras.labels_from_angles(
        torch.tensor([-20.0, 0.0, 20.0]), torch.zeros(3)))
    assert out["image"].shape == (2, 3, 3, 32, 32) and out["depth"].shape[:3] == (2, 3, 1)
    with pytest.raises(ValueError, match="unknown style"):
        stylizer.render(data.real_test[:1], style="anime", labels=data.test_labels[:1])
    with pytest.raises(ValueError, match="RGB"):
        stylizer.codes(torch.rand(2, 32, 32))


def test_released_g_world_loads_g_and_d(ctx, data, nets, tmp_path):
    """The mini path of notebook 02: G_world and its D from the study's own release; only E trains."""
    from portraitlib.pretrain.card import Kind, write_release

    cfg = generator3d.generator_config(ctx)
    g, d, _ = generator3d.build_networks(ctx, cfg, stage="release-test")
    with torch.no_grad():
        for p in d.parameters():
            p.add_(0.01)  # not the fresh D the study would build
    paths = write_release(tmp_path / "G_world-test", net=g, kind=Kind.G_WORLD, config=cfg.to_dict(), discriminator=d,
                          card={"name": "G_world (test)", "description": "d", "quality": {}})
    released = dataclasses.replace(ctx, profile=dataclasses.replace(ctx.profile, eg3d=dataclasses.replace(
        ctx.profile.eg3d, source_checkpoint=str(paths["weights"]))))
    G, D, E, art = generator3d.pretrained(released, data, nets, progress=False)
    assert art["source"].startswith("released") and set(art["logs"]) == {"encoder"}
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), g.state_dict().values()))
    assert all(torch.equal(a, b) for a, b in zip(D.state_dict().values(), d.state_dict().values()))
