"""Notebook 06's parts: mesh extraction, normal maps, warping error, the 2D pose direction, the
explorer, the read-only cache and the command line's errors."""
import dataclasses
import io
import math

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

import portraitlib as pl
from portraitlib import cameras, consistency, explore, mesh, steer2d, stylize
from portraitlib.cache import MissingArtefactError
from portraitlib.nets import configs
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.world import datasets
from portraitlib.profiles import WorldConfig

RADIUS = 0.3


class SphereGenerator(TriPlaneGenerator):
    """The smoke tri-plane generator with its field replaced by a sharp sphere of radius 0.3 about
    (0, 0, 0.1), red on the subject's left (+x), blue elsewhere; rendered by the real renderer."""

    centre = torch.tensor([0.0, 0.0, 0.1])

    def __init__(self):
        torch.manual_seed(0)
        super().__init__(config=dataclasses.replace(configs.SMOKE, neural_rendering_resolution=24,
                                                    coarse_samples=48, fine_samples=48))
        self.eval()

    def planes(self, ws, **_):
        return torch.zeros(len(ws), 3, 1, 2, 2)

    def field(self, planes):
        channels = self.config.plane_channels

        def evaluate(points):
            offset = points - self.centre
            raw = 5000 * (RADIUS - offset.norm(dim=-1, keepdim=True)) + 1
            red = (offset[..., :1] > 0).float()
            colours = torch.cat([red, torch.zeros_like(red), 1 - red, torch.zeros(*red.shape[:2], channels - 3)], -1)
            return colours, raw
        return evaluate


def sphere_code(generator):
    return torch.zeros(1, generator.num_ws_plus, generator.config.w_dim)


def test_mesh_of_a_sphere_has_its_radius_volume_outward_faces_and_colours(tmp_path):
    sphere = SphereGenerator()
    surface = mesh.extract(sphere, sphere_code(sphere), resolution=48)
    radii = np.linalg.norm(surface.vertices - SphereGenerator.centre.numpy(), axis=1)
    assert abs(radii.mean() - RADIUS) < 0.03 and radii.std() < 0.01
    assert surface.volume == pytest.approx(4 / 3 * math.pi * radii.mean() ** 3, rel=0.05), "faces wound outward"
    assert surface.is_watertight
    colours = surface.visual.vertex_colors
    right = surface.vertices[:, 0] > 0.05
    assert (colours[right, 0] > 200).all() and (colours[surface.vertices[:, 0] < -0.05, 2] > 200).all()
    paths = mesh.export(surface, tmp_path, "sphere")
    assert set(paths) == {"ply", "obj", "glb"}
    assert len(trimesh.load(paths["ply"]).vertices) == len(surface.vertices)
    assert len(trimesh.load(paths["obj"]).vertices) == len(surface.vertices)
    assert sum(len(g.vertices) for g in trimesh.load(paths["glb"]).geometry.values()) == len(surface.vertices)
    with pytest.raises(ValueError, match="unknown mesh formats"):
        mesh.export(surface, tmp_path, "sphere", formats=("stl",))
    with pytest.raises(ValueError, match="outside the field's density range"):
        mesh.extract(sphere, sphere_code(sphere), resolution=16, level=1e6)
    with pytest.raises(ValueError, match="one code at a time"):
        mesh.extract(sphere, sphere_code(sphere).expand(2, -1, -1))


def plane_depth(labels, resolution, normal, point):
    """Ray distance to the plane through ``point`` with ``normal`` from each camera."""
    cam2world, _ = cameras.split_labels(labels)
    origins, dirs = cameras.rays(cam2world, resolution)
    normal, point = torch.tensor(normal), torch.tensor(point)
    t = ((point - origins) @ normal) / (dirs @ normal)
    return t.reshape(len(labels), 1, resolution, resolution)


def test_normal_map_of_planes_faces_the_camera_and_tilts_the_right_way():
    labels = consistency.yaw_labels([0.0])
    facing = consistency.normal_map(plane_depth(labels, 16, (0.0, 0.0, 1.0), (0.0, 0.0, 0.3)), labels)
    inner = facing[..., 2:-2, 2:-2]
    assert torch.allclose(inner[:, 2], torch.ones_like(inner[:, 2]), atol=1e-3), "z toward the camera is 1"
    assert torch.allclose(inner[:, :2], torch.full_like(inner[:, :2], 0.5), atol=1e-3)
    # A plane turned toward the image's right (+x world, the camera's right at yaw 0): red above 0.5.
    n = torch.nn.functional.normalize(torch.tensor([1.0, 0.0, 1.0]), dim=0)
    turned = consistency.normal_map(plane_depth(labels, 16, tuple(n.tolist()), (0.0, 0.0, 0.3)), labels)
    assert turned[:, 0, 4:-4, 4:-4].mean() == pytest.approx(0.5 + n[0].item() / 2, abs=1e-3)
    # A plane tilted up (+y world): green above 0.5.
    up = torch.nn.functional.normalize(torch.tensor([0.0, 1.0, 1.0]), dim=0)
    tilted = consistency.normal_map(plane_depth(labels, 16, tuple(up.tolist()), (0.0, 0.0, 0.3)), labels)
    assert tilted[:, 1, 4:-4, 4:-4].mean() == pytest.approx(0.5 + up[1].item() / 2, abs=1e-3)


def test_warping_error_is_small_for_one_head_and_large_for_another():
    cfg = WorldConfig(image_size=48, n_train=2, n_test=2, n_exemplars=2, styles=("cartoon",))
    latents = datasets.sample_latents(2, generator=torch.Generator().manual_seed(1))
    a = datasets.render_set(latents, torch.tensor([[0.0, 0.0, 0.0]] * 2), look="cartoon", config=cfg)
    b = datasets.render_set(latents, torch.tensor([[15.0, 0.0, 0.0]] * 2), look="cartoon", config=cfg)
    true = consistency.warping_error(a.images, a.depth, a.labels, b.images, b.labels, mask_a=a.mask > 0.99,
                                     depth_b=b.depth)
    same = true["warped"]
    swapped = consistency.warping_error(a.images, a.depth, a.labels, b.images.flip(0), b.labels,
                                        mask_a=a.mask > 0.99, depth_b=b.depth.flip(0))["warped"]
    wrong_depth = consistency.warping_error(a.images, a.depth + 0.1, a.labels, b.images, b.labels,
                                            mask_a=a.mask > 0.99)["warped"]
    assert (swapped > 2 * same).all() and (wrong_depth > 1.3 * same).all(), (same, swapped, wrong_depth)
    assert (true["unmoved"] > 1.5 * same).all(), "the true geometry explains most of the change between views"
    epi = consistency.epipolar_image(torch.stack([a.images[0], b.images[0]]), row=24)
    assert epi.shape == (3, 2, 48) and torch.equal(epi[:, 1], b.images[0, :, 24])


class LinearYawGenerator:
    """A stand-in 2D generator whose image brightness is a linear function of the codes."""

    def __init__(self, coef):
        self.coef = coef

    def synthesis(self, ws):
        value = (ws.mean(1) * self.coef).sum(1)  # (N,)
        return value.reshape(-1, 1, 1, 1).expand(-1, 3, 4, 4) / 100


class BrightnessRegressor(torch.nn.Module):
    """Reads "yaw" back from the stand-in's images: 200 * (2 * mean - 1) degrees, so 1 unit = 1 deg."""

    def forward(self, images):
        yaw = (images.mean((1, 2, 3)) * 2 - 1) * 100
        return torch.stack([yaw, torch.zeros_like(yaw)], 1)


def test_pose_direction_reads_yaw_and_the_calibrated_step_turns_by_the_asked_degrees():
    g = torch.Generator().manual_seed(0)
    ws = torch.randn(64, 3, 8, generator=g) * 0.1
    true_coef = torch.randn(8, generator=g)
    yaws = (ws.mean(1) * true_coef).sum(1) * 5 + 2
    direction = steer2d.fit_pose_direction(ws, yaws, ridge=1e-6)
    assert direction.r2 > 0.999
    assert torch.allclose(direction.direction, torch.nn.functional.normalize(true_coef, dim=0), atol=1e-3)
    # Images whose regressor yaw is (w . coef) (in the stand-in's units): calibration finds the step.
    generator, regressor = LinearYawGenerator(true_coef), BrightnessRegressor()
    calibrated = steer2d.calibrate(direction, generator, ws[:8], regressor, degrees=10.0)
    asked = torch.tensor([10.0, -20.0, 0.0, 30.0])
    before = regressor(((generator.synthesis(ws[:4]) + 1) / 2))[:, 0]
    after = regressor(((generator.synthesis(ws[:4] + calibrated.shift(asked)) + 1) / 2))[:, 0]
    assert torch.allclose(after - before, asked, atol=1e-2)
    with pytest.raises(ValueError, match="one yaw per code"):
        steer2d.fit_pose_direction(ws, yaws[:3])
    flipped = steer2d.PoseDirection(direction=-direction.direction, degrees_per_unit=1.0, r2=0.0)
    with pytest.raises(ValueError, match="does not turn the heads"):
        steer2d.calibrate(flipped, generator, ws[:8], regressor)


def test_read_only_cache_refuses_to_build(tmp_path):
    cache = pl.ArtifactCache(profile="smoke", seed=0, root=tmp_path, read_only=True)
    built = []
    with pytest.raises(MissingArtefactError, match="has not been built"):
        cache.get_or_build("toy", {"a": 1}, lambda: built.append(1) or {"x": 1})
    with pytest.raises(MissingArtefactError):
        cache.folder("set", {"a": 1}, lambda folder: built.append(2))
    assert not built and not list(tmp_path.rglob("*"))
    writable = pl.ArtifactCache(profile="smoke", seed=0, root=tmp_path)
    writable.get_or_build("toy", {"a": 1}, lambda: {"x": torch.ones(1)})
    assert torch.equal(cache.get_or_build("toy", {"a": 1}, lambda: {"x": torch.zeros(1)})["x"], torch.ones(1))


class RandomCodeStylizer:
    """A stylizer stand-in for the explorer: one fixed random W+ code per photo."""

    def __init__(self, generator):
        self.generators = {"cartoon": generator}

    def codes(self, photos):
        g = self.generators["cartoon"]
        return torch.randn(len(photos), g.num_ws_plus, g.config.w_dim, generator=torch.Generator().manual_seed(0))


def test_explorer_grid_preview_and_widget():
    torch.manual_seed(0)
    generator = TriPlaneGenerator(config=configs.named("smoke")).eval()
    photos = torch.rand(2, 3, 16, 16)
    explorer = explore.Explorer(stylizer=RandomCodeStylizer(generator), photos=photos, names=["a", "b"])
    size = generator.config.img_resolution
    grid = explorer.grid(photo=1, style="cartoon", yaws=[-20.0, 0.0, 20.0], pitches=[-10.0, 10.0])
    assert grid.shape == (2, 3, 3, size, size) and 0 <= grid.min() and grid.max() <= 1
    full = explorer.render(photo=1, style="cartoon", yaw=20.0, pitch=10.0)
    assert torch.allclose(full, grid[1, 2], atol=1e-5), "the grid and the widget render the same view"
    preview = explorer.render(photo=1, style="cartoon", yaw=20.0, pitch=10.0, preview=True)
    assert preview.shape == full.shape and not torch.equal(preview, full)
    with pytest.raises(ValueError, match="unknown style"):
        explorer.render(photo=0, style="anime", yaw=0, pitch=0)
    box = explorer.widget(display_size=64)
    view = box.children[-1]
    first = view.value
    yaw_slider = box.children[1].children[0]
    yaw_slider.value = 30.0
    assert view.value != first, "moving the yaw slider re-renders the view"
    assert Image.open(io.BytesIO(view.value)).size == (64, 64)


@pytest.fixture()
def photos(tmp_path):
    from skimage import data
    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.png")
    Image.fromarray(data.coffee()).save(tmp_path / "coffee.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg at all")
    return tmp_path


def test_cli_errors_are_clear_and_non_zero(photos, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    assert stylize.main([str(photos / "coffee.png"), "--style", "cartoon", "--out", str(out), "--profile", "smoke"]) == 2
    assert "no face found" in capsys.readouterr().err
    assert stylize.main([str(photos / "broken.jpg"), "--style", "cartoon", "--out", str(out), "--profile", "smoke"]) == 2
    assert "broken.jpg" in capsys.readouterr().err
    assert stylize.main([str(photos / "astronaut.png"), "--style", "vangogh", "--out", str(out),
                         "--profile", "smoke"]) == 2
    assert "unknown style 'vangogh'" in capsys.readouterr().err
    assert stylize.main([str(photos / "astronaut.png"), "--style", "cartoon", "--out", str(out),
                         "--profile", "nonsense"]) == 2
    # Nothing trained in an empty cache: a clear error, and nothing is trained or written.
    monkeypatch.setenv("PORTRAITLIB_CACHE", str(tmp_path / "empty_cache"))
    assert stylize.main([str(photos / "astronaut.png"), "--style", "cartoon", "--out", str(out),
                         "--profile", "smoke"]) == 3
    err = capsys.readouterr().err
    assert "not trained for profile 'smoke'" in err and "make study" in err
    assert not out.exists() and not list((tmp_path / "empty_cache").rglob("*.pt"))


def test_a_folder_built_meanwhile_by_another_process_is_kept(tmp_path):
    cache = pl.ArtifactCache(profile="smoke", seed=0, root=tmp_path)
    final = cache.path("set", {"a": 1}).with_suffix("")

    def racing_build(folder):  # the other process finishes first, while this one is still writing
        (folder / "mine.txt").write_text("mine")
        final.mkdir(parents=True)
        (final / "theirs.txt").write_text("theirs")

    assert cache.folder("set", {"a": 1}, racing_build) == final
    assert [p.name for p in final.iterdir()] == ["theirs.txt"]
    assert [p.name for p in final.parent.iterdir()] == [final.name], "the losing temporary folder is removed"
    with pytest.raises(OSError):
        cache.folder("other", {"a": 2}, lambda folder: (_ for _ in ()).throw(OSError("disk full")))
