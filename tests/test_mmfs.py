import pytest
import torch

from portraitlib import metrics
from portraitlib.device import seeded_build
from portraitlib.mmfs.config import MMFSConfig
from portraitlib.mmfs.losses import SelfSimilarity, projection_loss, structure_loss, token_basis
from portraitlib.mmfs.mapping import CLIPMapping
from portraitlib.mmfs.model import MMFS
from portraitlib.mmfs.training import stage_one
from portraitlib.training.gan2d import GAN2DConfig, build_2d
from portraitlib.world.styles import HELD_OUT_STYLES, STYLE_SPECS, get_style

TINY = GAN2DConfig(resolution=32, z_dim=8, w_dim=16, mapping_layers=2, channel_base=256, channel_max=16,
                   direct_resolution=8, mapping_lr_multiplier=1.0, normalize_z=False)


def tiny_source():
    with seeded_build(0, "test-mmfs"):
        g, d = build_2d(TINY)
        torch.nn.init.normal_(g.synthesis.direct.weight, std=0.1)  # a direct path that does something
    return g.eval().requires_grad_(False), d


def test_decoder_of_s_own_features_is_s_and_e_gives_features_of_that_shape():
    g, _ = tiny_source()
    with seeded_build(0, "test-mmfs-net"):
        net = MMFS.from_source(g, feature_resolution=8, encoder_width=4)
    z = torch.randn(3, TINY.z_dim, generator=torch.Generator().manual_seed(1))
    ws = g.mapping(z, None)
    x, img = g.synthesis.features(ws, until=8)
    assert torch.equal(net.decoder(x, img, ws[:, net.first_w:]), g(z))
    assert torch.equal(net.styles(z), ws[:, net.first_w:])
    assert net.num_ws == g.num_ws - net.first_w
    e_x, e_img = net.encoder(g(z))
    assert e_x.shape == x.shape and e_img.shape == img.shape


def test_cutting_below_the_direct_path_is_refused():
    g, _ = tiny_source()
    with pytest.raises(ValueError, match="direct path"):
        MMFS.from_source(g, feature_resolution=4, encoder_width=4)


def test_stage_one_trains_the_encoder_only_and_its_loss_falls():
    g, d = tiny_source()
    with seeded_build(0, "test-mmfs-net"):
        net = MMFS.from_source(g, feature_resolution=8, encoder_width=8)
    decoder_before = [p.clone() for p in net.decoder.parameters()]
    cfg = MMFSConfig(feature_resolution=8, encoder_width=8, batch=8, stage1_steps=60, stage1_lr=2e-3, ema_half_life=50)
    ema, log = stage_one(net, g, d, config=cfg, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(decoder_before, ema.decoder.parameters()))
    assert sum(log["l1"][-10:]) < 0.8 * sum(log["l1"][:10])


def test_stage_one_resumed_after_an_interruption_ends_where_an_uninterrupted_run_does(tmp_path):
    g, d = tiny_source()
    cfg = MMFSConfig(feature_resolution=8, encoder_width=4, batch=4, stage1_steps=6, ema_half_life=20)

    def run(steps: int, checkpoint):
        with seeded_build(0, "test-mmfs-net"):
            net = MMFS.from_source(g, feature_resolution=8, encoder_width=4)
        return stage_one(net, g, d, config=MMFSConfig(**{**cfg.__dict__, "stage1_steps": steps}), seed=0,
                         checkpoint=checkpoint)

    whole, _ = run(6, None)
    path = tmp_path / "stage1.pt"
    run(3, path)  # killed after 3 steps (its checkpoint holds them)
    resumed, log = run(6, path)
    assert len(log["l1"]) == 6
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_self_similarity_is_unchanged_by_a_recolouring_less_than_by_a_new_layout():
    similarity = SelfSimilarity(metrics.LPIPS(net="vgg", random_trunk=True), layer=3)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert similarity(images).shape == (2, 64, 64)
    assert structure_loss(similarity, images, images).item() == 0
    recoloured = images * torch.tensor([0.9, 1.0, 0.8]).view(1, 3, 1, 1)
    assert structure_loss(similarity, recoloured, images) < structure_loss(similarity, images.flip(-1).flip(-2), images)


def test_self_similarity_needs_the_vgg_trunk():
    with pytest.raises(ValueError, match="VGG16"):
        SelfSimilarity(metrics.LPIPS(net="alex", random_trunk=True), layer=3)


def test_projection_loss_is_zero_on_the_reference_and_the_basis_must_not_span_everything():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randn(2, 6, 10, generator=g)
    basis = token_basis(tokens[0])
    assert basis.shape == (10, 6)
    torch.testing.assert_close(basis.T @ basis, torch.eye(6), atol=1e-5, rtol=0)
    assert projection_loss(tokens[:1], basis) < 1e-5 < projection_loss(tokens[1:], basis)
    with pytest.raises(ValueError, match="would be 0"):
        token_basis(torch.randn(12, 10, generator=g))


def test_clip_mapping_starts_at_the_mean_style_code():
    w_avg = torch.randn(3, 16)
    with seeded_build(0, "test-mapping"):
        mapping = CLIPMapping(clip_dim=32, num_ws=3, w_dim=16, layers=2, heads=4, w_avg=w_avg)
    out = mapping(torch.randn(5, 32))
    assert out.shape == (5, 3, 16)
    torch.testing.assert_close(out, w_avg.expand(5, -1, -1))
    with pytest.raises(ValueError, match="heads"):
        CLIPMapping(clip_dim=30, num_ws=3, w_dim=16, layers=2, heads=4, w_avg=w_avg)


def test_held_out_style_is_a_look_of_its_own_outside_the_training_styles():
    assert set(HELD_OUT_STYLES).isdisjoint(STYLE_SPECS)
    assert get_style("pop_art").name == "pop_art"
    with pytest.raises(ValueError, match="held out: pop_art"):
        get_style("watercolour")


def test_encoder_trains_on_channels_last_photos():
    """The world's loaded photos are channels-last; a strided 1x1 conv's backward aborts on such activations."""
    from portraitlib.mmfs.model import FeatureEncoder
    with seeded_build(0, "test-encoder"):
        encoder = FeatureEncoder(img_resolution=32, resolution=8, channels=16, width=4)
    photos = torch.rand(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    x, img = encoder(photos * 2 - 1)
    (x.sum() + img.sum()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in encoder.parameters())


def test_each_cache_key_names_real_settings_and_every_training_setting_is_in_one():
    from dataclasses import fields

    from portraitlib.mmfs import study
    names = {f.name for f in fields(MMFSConfig)}
    keyed = set(study.NETWORK_FIELDS) | set(study.MAPPING_FIELDS) | set(study.GUIDED_FIELDS)
    assert keyed <= names
    assert names - keyed == {"held_out_style"}  # which look is tested, not how anything trains


def test_guided_fine_tuning_moves_the_decoder_only_and_logs_each_term():
    from portraitlib.clip.model import world_clip
    from portraitlib.mmfs.training import Guide, finetune
    from portraitlib.profile_loading import load_profile

    g, _ = tiny_source()
    with seeded_build(0, "test-mmfs-net"):
        net = MMFS.from_source(g, feature_resolution=8, encoder_width=4)
        clip = world_clip(load_profile("smoke").clip, weights="random (test)").eval()
        mapping = CLIPMapping(clip_dim=clip.encode_texts(["a"]).shape[-1], num_ws=net.num_ws, w_dim=net.w_dim,
                              layers=1, heads=4, w_avg=torch.zeros(net.num_ws, net.w_dim))
    photos = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    similarity = SelfSimilarity(metrics.LPIPS(net="vgg", random_trunk=True), layer=3)
    cfg = MMFSConfig(batch=4, finetune_steps=12, mapping_lr=5e-3, finetune_ema_half_life=8, token_layer=3)
    tuned, codes, log = finetune(net, mapping, photos, clip, similarity, guide=Guide.text(clip, "a cartoon", anchor="a photo"),
                                 config=cfg, seed=0)
    assert codes.shape == (1, net.num_ws, net.w_dim)
    assert all(torch.equal(a, b) for a, b in zip(net.encoder.parameters(), tuned.encoder.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(net.decoder.parameters(), tuned.decoder.parameters()))
    assert set(log) == {"loss", "structure", "direction", "projection"} and len(log["loss"]) == 12
    assert all(v == 0 for v in log["projection"])  # a text prompt has no reference tokens


def test_tensor_digest_follows_the_values_only():
    from portraitlib.cache import tensor_digest
    a = torch.arange(6.0).view(2, 3)
    assert tensor_digest(a) == tensor_digest(a.double()) == tensor_digest(a.t().contiguous().t())
    assert tensor_digest(a) != tensor_digest(a + 1e-3) and tensor_digest(a, a) != tensor_digest(a)
