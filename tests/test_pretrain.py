"""G_world's and S_world's pretraining at SMOKE size: the losses fall on a tiny overfit set, a resumed
run is bit-identical, the releases round-trip, and a wrong file is refused."""
from __future__ import annotations

import dataclasses

import numpy as np

import pytest
import torch
from PIL import Image

from portraitlib.device import seeded_build, seeded_generator
from portraitlib.generator3d import discriminator_config
from portraitlib.nets import configs
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.pretrain.critic import warm_critic_2d, warm_critic_3d
from portraitlib.pretrain.card import Kind, held_out_grid, load_generator_2d, load_generator_3d, write_release
from portraitlib.pretrain.image2d import SETTINGS_2D, pretrain_2d, regression_loss
from portraitlib.pretrain.loop import fit, learning_rate
from portraitlib.pretrain.steps import distill_loss, guided_synthesis, render_loss
from portraitlib.pretrain.train import SETTINGS, Measures, held_out_renders, make_eval_set, make_pool, pretrain
from portraitlib.pretrain.world import (CODE_DIM, IMAGE_CODE_DIM, Views, WorldCodes, image_codes, point_targets,
                                        render_views, target_density)
from portraitlib.training.gan2d import GAN2DConfig, build_2d
from portraitlib.profiles import WorldConfig
from portraitlib.cameras import angles_from_labels
from portraitlib.quality import gate_labels
from portraitlib.world.identity import LATENT_DIM

CFG = configs.SMOKE
WORLD = WorldConfig(image_size=32, trace_steps=32)


class _L1:
    """A cheap stand-in for LPIPS in the held-out measures."""

    name = "l1_stand_in"

    def __call__(self, x, y):
        return (x - y).abs().flatten(1).mean(1)


def _generator(stage: str = "test") -> TriPlaneGenerator:
    with seeded_build(0, stage):
        return TriPlaneGenerator(config=CFG)


@pytest.fixture(scope="module")
def pool():
    """2 identities x 2 views, rendered at SMOKE's 32 px."""
    p = make_pool(n=2, z_dim=CFG.z_dim, config=WORLD, resolution=CFG.img_resolution, supersample=1, seed=0,
                  max_yaw=20, max_pitch=5)
    angles = torch.tensor([[-20.0, 0, 0], [20.0, 0, 0]]).repeat(2, 1)
    idx = torch.tensor([0, 0, 1, 1])
    codes = WorldCodes.sample(2, z_dim=CFG.z_dim, generator=seeded_generator(0)).index(idx)
    views = render_views(codes, angles, config=WORLD, resolution=CFG.img_resolution)
    return {"z": codes.z, "images": views.images, "labels": views.labels, "depth": views.depth, "random": p}


def test_codes_hold_identity_and_scene():
    codes = WorldCodes.sample(5, z_dim=CFG.z_dim, generator=seeded_generator(3))
    assert codes.z.shape == (5, CFG.z_dim) and codes.latents.shape == (5, LATENT_DIM)
    assert torch.isfinite(codes.z).all() and CODE_DIM < CFG.z_dim
    assert (codes.z[:, CODE_DIM:] == 0).all() and (codes.z[:, :CODE_DIM] != 0).all()  # no free noise
    assert configs.MINI.z_dim == CODE_DIM  # the mini G_world's z is the world code
    angles = torch.tensor([[-30.0, 15.0, 0.0], [0.0, 0.0, 0.0], [30.0, -15.0, 0.0]])
    z2d = image_codes(codes.z[:3], angles)
    assert z2d.shape == (3, IMAGE_CODE_DIM) and torch.equal(z2d[:, :CODE_DIM], codes.z[:3, :CODE_DIM])
    assert z2d[1, CODE_DIM:].abs().max() < 1e-6 and z2d[0, CODE_DIM] < -3 and z2d[2, CODE_DIM] > 3
    again = WorldCodes.sample(5, z_dim=CFG.z_dim, generator=seeded_generator(3))
    assert torch.equal(codes.z, again.z) and torch.equal(codes.scene.background, again.scene.background)
    assert target_density(torch.tensor([-0.1, 0.1])).tolist() == pytest.approx([200.0, 0.0], abs=1e-3)


def test_point_targets_lie_on_the_rays(pool):
    views = Views(images=pool["images"], labels=pool["labels"], depth=pool["depth"])
    t = point_targets(pool["z"][:, :LATENT_DIM], views, points=64, generator=seeded_generator(0))
    assert t.points.shape == (4, 64, 3) and t.sigma.shape == (4, 64) and t.colour.shape == (4, 64, 3)
    assert (t.colour_weight[:, 32:] == 0).all() and t.colour_weight[:, :32].max() > 0.5
    assert (t.sigma[:, :32] > 1).any() and (t.sigma[:, 32:] < 1).any()  # surface and empty space


def test_distillation_and_guided_rendering_overfit(pool):
    torch.manual_seed(0)
    g = _generator()
    opt = torch.optim.Adam(g.parameters(), lr=2e-3, betas=(0.0, 0.99))
    rng = seeded_generator(0)
    views = Views(images=pool["images"], labels=pool["labels"], depth=pool["depth"])
    targets = point_targets(pool["z"][:, :LATENT_DIM], views, points=256, generator=rng)
    losses = []
    for _ in range(25):
        loss, _ = distill_loss(g, pool["z"], pool["labels"], targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0]
    losses = []
    for _ in range(15):
        out = guided_synthesis(g, g.mapping(pool["z"], pool["labels"]), pool["labels"], pool["depth"], generator_rng=rng)
        loss, parts = render_loss(out, pool["images"], pool["depth"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert out["image"].shape == (4, 3, CFG.img_resolution, CFG.img_resolution)
    assert set(parts) == {"l1", "depth"} and losses[-1] < 0.8 * losses[0]


def test_resume_is_bit_identical_and_release_round_trips(pool, tmp_path):
    data = pool["random"]
    held_out = make_eval_set(n=2, z_dim=CFG.z_dim, config=WORLD, resolution=CFG.img_resolution, seed=0)
    settings = dataclasses.replace(SETTINGS["smoke"], eval_every=100)
    settings = dataclasses.replace(settings, perceptual_weight=0.0)
    kw = dict(pool=data, held_out=held_out, settings=settings, seed=0, judge=Measures(_L1()))
    full, log = pretrain(_generator(), checkpoint=tmp_path / "a.pt", **kw)
    assert log["done"] and log["step"] == settings.distill_steps + settings.render_steps
    part, cut = pretrain(_generator(), checkpoint=tmp_path / "b.pt", minutes=0.0, **kw)
    assert cut["step"] == 1 and not cut["done"]
    resumed, log_b = pretrain(_generator(), checkpoint=tmp_path / "b.pt", **kw)
    assert log_b["done"]
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    record = log["curve"][-1]
    assert {"face_detection", "l1_to_truth", "l1_stand_in_to_truth", "depth_l1_to_truth", "density", "l1"} <= set(record)
    with seeded_build(0, "critic"):
        d = discriminator_config(CFG).build()
    d, d_log = warm_critic_3d(d, full, pool=data, steps=2, batch=2, seed=0, checkpoint=tmp_path / "d.pt")
    assert d_log["done"] and 0 <= d_log["curve"][-1]["d_accuracy"] <= 1
    two = {k: v[:2] for k, v in data.items()}
    made = held_out_renders(full, two)["image"]
    paths = write_release(tmp_path / "out", net=full, kind=Kind.G_WORLD, config=CFG.to_dict(), discriminator=d, card={"name": "t", "description": "d", "command": "c",
                          "commit": "x", "seed": 0, "device": "cpu", "wall_time_s": 1.0, "steps": 8,
                          "images_seen": 16, "schedule_done": True, "route": "r", "quality": {"l1": 0.1},
                          "curve": log["curve"]}, grid=held_out_grid(two["images"], made, per_row=1))
    side = two["images"].shape[-1] + 2  # save_image pads each tile by 2 px
    grid = np.asarray(Image.open(paths["grid"]))
    assert grid.shape == (4 * side + 2, side + 2, 3)  # rows: truth, G, truth, G
    first = (two["images"][0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    assert np.abs(grid[2:side, 2:side].astype(int) - first).max() <= 1
    with pytest.raises(ValueError, match="differ in shape"):
        held_out_grid(two["images"], made[:1])
    loaded, d_state = load_generator_3d(paths["weights"], config=CFG)
    assert all(torch.equal(a, d_state[k]) for k, a in d.state_dict().items())
    for (name, a), b in zip(full.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    assert "| l1 | 0.1 |" in paths["card_md"].read_text()
    with pytest.raises(ValueError, match="another generator config.*z_dim"):
        load_generator_3d(paths["weights"], config=dataclasses.replace(CFG, z_dim=CFG.z_dim + 1))
    with pytest.raises(ValueError, match="not 'portraitlib StyleGAN2Generator'"):
        load_generator_2d(paths["weights"])
    with pytest.raises(FileNotFoundError, match="make pretrain"):
        load_generator_3d(tmp_path / "absent.safetensors", config=CFG)
    (tmp_path / "bad.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ValueError, match="not a safetensors file"):
        load_generator_3d(tmp_path / "bad.safetensors", config=CFG)


S_CFG = GAN2DConfig(resolution=32, z_dim=IMAGE_CODE_DIM, w_dim=32, mapping_layers=2, channel_base=1024,
                    channel_max=32, direct_resolution=8, mapping_lr_multiplier=1.0)


def _image_generator():
    with seeded_build(0, "S_world-test"):
        return build_2d(S_CFG)[0]


def test_direct_paths_start_at_zero():
    """The mini additions (planes += A w, features += A w) change nothing at initialisation."""
    with seeded_build(0, "a"):
        plain = TriPlaneGenerator(config=CFG)
    with seeded_build(0, "a"):
        headed = TriPlaneGenerator(config=dataclasses.replace(CFG, plane_head=True))
    z, c = torch.randn(2, CFG.z_dim), gate_labels(2)
    ws = plain.mapping(z, c)
    assert torch.equal(plain.planes(ws), headed.planes(ws))
    s = _image_generator()
    z2d = torch.randn(2, IMAGE_CODE_DIM)
    before = s(z2d)
    with torch.no_grad():
        s.synthesis.direct.weight.normal_()
    assert before.shape == (2, 3, 32, 32) and not torch.allclose(before, s(z2d))


def test_image_regression_overfits_resumes_and_round_trips(pool, tmp_path):
    s = _image_generator()
    opt = torch.optim.Adam(s.parameters(), lr=2e-3, betas=(0.9, 0.99))
    angles = torch.tensor([[-20.0, 0, 0], [20.0, 0, 0]]).repeat(2, 1)
    z = image_codes(pool["z"], angles)
    images = torch.nn.functional.interpolate(pool["images"], size=32, mode="area")
    losses = []
    for _ in range(30):
        loss, parts = regression_loss(s, z, images)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert set(parts) == {"l1"} and losses[-1] < 0.7 * losses[0]

    data = pool["random"]  # rendered at 32 px: S's side
    held_out = make_eval_set(n=2, z_dim=CFG.z_dim, config=WORLD, resolution=32, seed=0)
    settings = dataclasses.replace(SETTINGS_2D["smoke"], perceptual_weight=0.0)
    kw = dict(pool=data, held_out=held_out, settings=settings, seed=0, judge=Measures(_L1()))
    full, log = pretrain_2d(_image_generator(), checkpoint=tmp_path / "a.pt", **kw)
    assert log["done"] and {"face_detection", "l1_stand_in_to_truth", "l1"} <= set(log["curve"][-1])
    pretrain_2d(_image_generator(), checkpoint=tmp_path / "b.pt", minutes=0.0, **kw)
    resumed, _ = pretrain_2d(_image_generator(), checkpoint=tmp_path / "b.pt", **kw)
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    with seeded_build(0, "critic"):
        d = build_2d(S_CFG)[1]
    d, d_log = warm_critic_2d(d, full, pool=data, steps=4, batch=2, seed=0, checkpoint=tmp_path / "d.pt")
    assert {"d_loss", "d_accuracy"} <= set(d_log["curve"][-1]) and d_log["done"]
    paths = write_release(tmp_path / "s", net=full, kind=Kind.S_WORLD, config=dataclasses.asdict(S_CFG),
                          card={"name": "s", "description": "d", "quality": {}}, discriminator=d)
    loaded, recorded, d_state = load_generator_2d(paths["weights"])
    assert GAN2DConfig(**recorded) == S_CFG and d_state.keys() == d.state_dict().keys()
    assert all(torch.equal(a, d_state[k]) for k, a in d.state_dict().items())
    for (name, a), b in zip(full.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="not 'portraitlib TriPlaneGenerator'"):
        load_generator_3d(paths["weights"], config=CFG)


def test_world_samples_are_judged_against_the_world_photo_of_their_code(tmp_path):
    """Study.judge_world_samples: G_world's and S_world's samples z ~ N(0, I) beside the world's true
    photo of the same z at the same camera (a world code fixes the photo)."""
    import portraitlib as pl
    from portraitlib.pipeline import Study

    profile = dataclasses.replace(pl.load_profile("smoke"), world=WorldConfig(image_size=32, trace_steps=32))
    ctx = pl.StudyContext(notebook="t", profile=profile, seed=0, device=torch.device("cpu"),
                          cache=pl.ArtifactCache(profile="t", seed=0, root=tmp_path))
    study, seen = Study(ctx), []
    study.__dict__["judge"] = lambda images, *, look, labels, truth: seen.append((images, labels, truth)) or {"n": 4}
    with seeded_build(0, "g"):
        g = TriPlaneGenerator(config=dataclasses.replace(CFG, z_dim=CODE_DIM))
    assert study.judge_world_samples(g, n=4) == {"n": 4}
    images, labels, truth = seen[-1]
    assert images.shape == truth.shape == (4, 3, 32, 32) and truth.std() > 0.05
    yaws = angles_from_labels(labels)[:, 0]
    assert yaws[0] == pytest.approx(-30, abs=1e-3) and yaws[-1] == pytest.approx(30, abs=1e-3)
    # the truth is the world's photo of the sampled code: rendering the same z again gives it
    z = torch.randn(4, CODE_DIM, generator=seeded_generator(ctx.seed + 17))
    again = render_views(WorldCodes.from_z(z), angles_from_labels(labels), config=profile.world).images
    assert torch.allclose(again, truth, atol=1e-5)
    study.judge_world_samples(_image_generator(), n=4)
    assert seen[-1][0].shape == (4, 3, 32, 32)
    with pytest.raises(ValueError, match="not the world code"):
        study.judge_world_samples(_generator(), n=4)


def test_cooldowns_fall_linearly_and_a_later_window_starts_from_the_full_rate(tmp_path):
    rates = [learning_rate(step, lr=1.0, steps=10, cooldowns=((2, 4), (6, 10))) for step in range(10)]
    assert rates == [1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25]
    assert learning_rate(9, lr=1.0, steps=10) == 1.0
    for bad in (((0, 11),), ((4, 6), (2, 3)), ((2, 5), (4, 6)), ((3, 3),)):
        with pytest.raises(ValueError, match="cooldown windows"):
            learning_rate(0, lr=1.0, steps=10, cooldowns=bad)
    net = torch.nn.Linear(2, 1)
    _, log = fit(net, loss=lambda step, idx, rng: (net.weight.square().sum(), {}), measure=lambda n: {}, steps=4,
                 pool_size=4, batch=2, lr=0.1, seed=0, checkpoint=tmp_path / "c.pt", eval_every=1,
                 cooldowns=((2, 4),))
    assert [r["lr"] for r in log["curve"]] == pytest.approx([0.1, 0.1, 0.1, 0.05])
