"""G_world's pretraining at SMOKE size: the losses fall on a tiny overfit set, a resumed run is
bit-identical, the release round-trips."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from portraitlib.device import seeded_build, seeded_generator
from portraitlib.nets import configs
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.pretrain.card import load_weights, write_release
from portraitlib.pretrain.steps import distill_loss, guided_synthesis, render_loss
from portraitlib.pretrain.train import SETTINGS, make_eval_set, make_pool, pretrain
from portraitlib.pretrain.world import CODE_DIM, Views, WorldCodes, point_targets, render_views, target_density
from portraitlib.profiles import WorldConfig
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
    kw = dict(pool=data, held_out=held_out, settings=settings, seed=0, lpips=_L1())
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
    paths = write_release(tmp_path / "out", generator=full, card={"name": "t", "description": "d", "command": "c",
                          "commit": "x", "seed": 0, "device": "cpu", "wall_time_s": 1.0, "steps": 8,
                          "images_seen": 16, "schedule_done": True, "route": "r", "quality": {"l1": 0.1},
                          "curve": log["curve"]})
    loaded = load_weights(paths["weights"], config=CFG)
    for (name, a), b in zip(full.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    assert "| l1 | 0.1 |" in paths["card_md"].read_text()
