import dataclasses

import pytest
import torch

from portraitlib import cameras, consistency, world
from portraitlib.world.head import ellipsoid, head_sdf

RES = 32


@pytest.fixture(scope="module")
def heads():
    return world.params_from_latent(world.sample_latents(6, generator=torch.Generator().manual_seed(3)))


def front_lit(n):
    return world.Scene(light=torch.tensor([[0.0, 0.0, 1.0]]).repeat(n, 1), ambient=torch.full((n,), 0.3),
                       background=torch.tensor([[0.2, 0.4, 0.6]]).repeat(n, 1))


def test_identity_latents_map_to_parameters_deterministically():
    g = torch.Generator().manual_seed(0)
    z = world.sample_latents(4000, generator=g)
    a, b = world.params_from_latent(z), world.params_from_latent(z)
    assert torch.equal(a.eye_size, b.eye_size)
    assert 0.17 < a.glasses.mean() < 0.23 and 0.09 < a.hat.mean() < 0.15
    with pytest.raises(ValueError, match="must have shape"):
        world.params_from_latent(torch.zeros(2, 3))


def test_ellipsoid_sdf_signs():
    p = torch.tensor([[[0.1, 0.0, 0.0], [0.2, 0.0, 0.0], [0.0, 0.5, 0.0]]])
    d = ellipsoid(p, torch.zeros(3), torch.tensor([0.2, 0.3, 0.1]))[0]
    assert d[0] < 0 and abs(d[1]) < 1e-6 and d[2] == pytest.approx(0.2, abs=0.02)


def test_render_shapes_ranges_and_surface(heads):
    cams = cameras.orbit_camera(torch.linspace(-30, 30, 6), torch.zeros(6))
    out = world.render(heads, cams, resolution=RES, scene=front_lit(6))
    assert out.rgb.shape == (6, 3, RES, RES) and out.depth.shape == out.mask.shape == (6, 1, RES, RES)
    assert 0 <= out.rgb.min() and out.rgb.max() <= 1
    assert 0.25 < out.mask.mean() < 0.8, "a head fills a portrait-like part of the frame"
    fg = out.mask[:, 0] > 0
    assert (out.depth[:, 0][fg] > world.NEAR).all() and (out.depth[:, 0][fg] < world.FAR).all()
    assert (out.depth[:, 0][~fg] == world.FAR).all()
    assert torch.allclose(out.rgb[:, :, 0, 0], torch.tensor([0.2, 0.4, 0.6]).expand(6, 3) * 1.075, atol=0.01)
    # Depth lands on the surface: the SDF at lifted foreground pixels is close to zero.
    points = consistency.surface_points(out.depth, cameras.make_labels(cams))
    sdf = head_sdf(points, heads)
    assert sdf[fg.flatten(1)].abs().max() < 2e-3


def test_views_of_one_head_agree_in_3d(heads):
    n = len(heads)
    a, b = cameras.orbit_camera(torch.full((n,), -20.0), torch.zeros(n)), cameras.orbit_camera(torch.full((n,), 20.0), torch.full((n,), 5.0))
    va, vb = world.render(heads, a, resolution=64), world.render(heads, b, resolution=64)
    la, lb = cameras.make_labels(a), cameras.make_labels(b)

    def error(depth_b, mask_b, i):  # head i, view A to B
        return consistency.reprojection_error(va.depth[i:i + 1], la[i:i + 1], depth_b[i:i + 1], lb[i:i + 1],
                                              mask_a=va.mask[i:i + 1] > 0.99, mask_b=mask_b[i:i + 1] > 0.99,
                                              occlusion=0.03, sample="nearest")

    same = [error(vb.depth, vb.mask, i) for i in range(n)]
    other = [error(vb.depth.roll(1, 0), vb.mask.roll(1, 0), i)["mean"] for i in range(n)]
    pixel = 2.5 / cameras.FOCAL / 64
    assert max(e["mean"] for e in same) < 0.75 * pixel
    assert sum(other) > 2 * sum(e["mean"] for e in same)
    assert min(e["fraction"] for e in same) > 0.5


def test_mirrored_camera_renders_the_mirrored_image(heads):
    symmetric = heads.replace(gaze_x=torch.zeros(len(heads)))  # the heads are otherwise bilaterally symmetric
    labels = cameras.labels_from_angles(torch.full((6,), 25.0), torch.full((6,), 8.0))
    mirrored = cameras.split_labels(cameras.mirror_labels(labels))[0]
    direct = world.render(symmetric, cameras.split_labels(labels)[0], resolution=RES, scene=front_lit(6))
    flipped = world.render(symmetric, mirrored, resolution=RES, scene=front_lit(6))
    assert (direct.rgb.flip(-1) - flipped.rgb).abs().mean() < 0.01
    assert (direct.rgb - flipped.rgb).abs().mean() > 0.03


def test_styles_are_distinct_and_change_geometry(heads):
    cams = cameras.orbit_camera(torch.zeros(6), torch.zeros(6))
    renders = {look: world.render(heads, cams, resolution=RES, style=world.get_style(look)).rgb
               for look in ("real", *world.STYLE_SPECS)}
    names = list(renders)
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            assert (renders[x] - renders[y]).abs().mean() > 0.04, f"{x} and {y} look alike"
    cartoon = world.get_style("cartoon").apply_geometry(heads)
    assert (cartoon.eye_size > heads.eye_size).all() and (cartoon.nose_length < heads.nose_length).all()
    sculpture = world.render(heads, cams, resolution=RES, style=world.get_style("sculpture"))
    fg = sculpture.mask[:, 0] > 0.99
    spread = sculpture.rgb.permute(0, 2, 3, 1)[fg]
    assert (spread.max(-1).values - spread.min(-1).values).mean() < 0.06, "sculpture is colourless stone"


def test_a_new_style_is_made_from_parameters(heads):
    spec = dataclasses.replace(world.get_style("cartoon"), name="blue_cartoon", background=(0.0, 0.0, 1.0),
                               geometry={"eye_size": 2.0})
    out = world.render(heads.index(slice(0, 1)), cameras.orbit_camera(0.0, 0.0), resolution=RES, style=spec)
    assert out.rgb[0, :, 0, 0].tolist() == pytest.approx([0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="valid: real, cartoon"):
        world.get_style("cubism")
    with pytest.raises(ValueError, match="unknown head parameter"):
        dataclasses.replace(spec, geometry={"beak": 2.0}).apply_geometry(heads)


def test_render_rejects_mismatched_cameras(heads):
    with pytest.raises(ValueError, match="one camera"):
        world.render(heads, cameras.orbit_camera(0.0, 0.0), resolution=RES)


def test_tracing_envelope_contains_every_head_and_style():
    from portraitlib.world.renderer import _envelope

    g = torch.Generator().manual_seed(0)
    extremes = torch.randn(64, world.LATENT_DIM, generator=g).sign() * 3  # parameters at their range ends
    grid = torch.stack(torch.meshgrid(*[torch.linspace(-0.7, 0.7, 36)] * 3, indexing="ij"), -1).reshape(-1, 3)
    for look in world.STYLE_SPECS:
        heads = world.get_style(look).apply_geometry(world.params_from_latent(extremes))
        for i in range(0, 64, 16):
            inside = head_sdf(grid.expand(16, -1, -1), heads.index(slice(i, i + 16))) < 0
            assert inside.any()
            assert (_envelope(grid[inside.any(0)]) < 0).all(), f"{look}: a head pokes out of the envelope"
