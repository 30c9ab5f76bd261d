import json

import torch

from portraitlib import cameras
from portraitlib.pose import train_pose_regressor
from portraitlib.profiles import WorldConfig
from portraitlib.world import datasets

CFG = WorldConfig(image_size=32, trace_steps=40)


def test_eg3d_layout_round_trip(tmp_path):
    data = datasets.make_real_set(6, split="train", seed=0, config=CFG)
    meta = datasets.save_eg3d(data, tmp_path)
    entries = json.loads(meta.read_text())["labels"]
    assert entries[0][0] == "img_00000000.png" and len(entries[0][1]) == 25
    images, labels, names = datasets.load_eg3d(tmp_path)
    assert images.shape == (6, 3, 32, 32) and (images - data.images).abs().max() <= 1 / 255
    assert torch.allclose(labels, data.labels, atol=1e-6)
    truth = datasets.load_groundtruth(tmp_path)
    assert torch.equal(truth["latents"], data.latents) and truth["depth"].shape == (6, 1, 32, 32)
    first, first_labels, first_names = datasets.load_eg3d(tmp_path, limit=2)  # a peek reads two images
    assert torch.equal(first, images[:2]) and torch.equal(first_labels, labels[:2]) and first_names == names[:2]
    only_labels, label_names = datasets.eg3d_labels(tmp_path)
    assert torch.equal(only_labels, labels) and label_names == names
    meta.write_text(json.dumps({"labels": [[n, l[:24]] for n, l in entries]}))
    try:
        datasets.eg3d_labels(tmp_path)
    except ValueError as exc:
        assert "25 numbers" in str(exc)
    else:
        raise AssertionError("24-number labels were accepted")


def test_splits_have_their_own_identities_and_poses():
    train = datasets.make_real_set(4, split="train", seed=0, config=CFG)
    test = datasets.make_real_set(4, split="test", seed=0, config=CFG)
    again = datasets.make_real_set(4, split="train", seed=0, config=CFG)
    assert torch.equal(train.images, again.images), "a seed fixes the data"
    assert not torch.allclose(train.latents, test.latents)
    ex = datasets.make_exemplars("comic", 8, seed=0, config=CFG)
    assert ex.look == "comic" and ex.angles[:, 0].abs().max() <= 35
    assert not torch.allclose(ex.latents[:4], train.latents)


def test_pose_regressor_learns_on_world_renders():
    data = datasets.make_pose_set(48, looks=("real", "cartoon"), split="train", seed=0, config=CFG)
    model, curve = train_pose_regressor(data.images, data.angles, epochs=10, seed=0)
    assert curve[-1] < 0.6 * curve[0]
    labels = model.labels(data.images[:5])
    assert labels.shape == (5, 25)
    assert cameras.angular_error(labels, data.labels[:5]).mean() < 30


def test_pose_set_renders_at_its_own_size_not_the_worlds():
    """The paper's world is 1024 px; its pose set (read at 64 px) must not be."""
    big = WorldConfig(image_size=48, pose_set_size=16, trace_steps=40)
    data = datasets.make_pose_set(2, looks=("cartoon",), split="train", seed=0, config=big)
    assert data.images.shape == (2, 3, 16, 16) and data.depth.shape == (2, 1, 16, 16)
    same = datasets.make_pose_set(2, looks=("cartoon",), split="train", seed=0, config=CFG)
    assert same.images.shape == (2, 3, 32, 32)  # a world smaller than pose_set_size keeps its own size
    assert torch.equal(data.angles, same.angles) and torch.equal(data.latents, same.latents)


def test_real_scene_renders_the_same_photo_again_and_at_a_new_camera():
    data = datasets.make_real_set(4, split="test", seed=0, config=CFG)
    scene = datasets.real_scene(4, split="test", seed=0)
    again = datasets.render_set(data.latents, data.angles, look="real", config=CFG, scene=scene)
    assert torch.equal(again.images, data.images)
    turned = datasets.render_set(data.latents, data.angles + torch.tensor([25.0, 0, 0]), look="real", config=CFG,
                                 scene=scene)
    studio = datasets.render_set(data.latents, data.angles + torch.tensor([25.0, 0, 0]), look="real", config=CFG)
    assert not torch.equal(turned.images, data.images)
    colour = lambda images: images.mean((2, 3))  # noqa: E731  (light and background dominate it)
    assert (colour(turned.images) - colour(data.images)).abs().mean() < (colour(studio.images) - colour(data.images)).abs().mean()


def test_true_stylized_photos_share_identity_and_camera_with_the_real_split():
    photos = datasets.make_real_set(3, split="test", seed=0, config=CFG)
    truth = datasets.make_true_stylized("anime", split="test", n=3, seed=0, config=CFG)
    assert torch.equal(truth.latents, photos.latents) and torch.equal(truth.labels, photos.labels)
    direct = datasets.render_set(photos.latents, photos.angles, look="anime", config=CFG)
    assert torch.equal(truth.images, direct.images)
    assert (truth.images - photos.images).abs().mean() > 0.04, "the style changes the picture"


def test_cached_views_render_once_and_key_on_the_cameras(tmp_path):
    from portraitlib.cache import ArtifactCache

    cache = ArtifactCache(profile="unit", seed=0, root=tmp_path)
    latents = datasets.sample_latents(2, generator=torch.Generator().manual_seed(3))
    angles = torch.tensor([[10.0, 0.0, 0.0], [-20.0, 5.0, 0.0]])
    first = datasets.cached_views(cache=cache, latents=latents, angles=angles, look="comic", config=CFG)
    stored = sorted(p.name for p in tmp_path.rglob("world-views-comic-*.pt"))
    again = datasets.cached_views(cache=cache, latents=latents, angles=angles, look="comic", config=CFG)
    assert len(stored) == 1 and sorted(p.name for p in tmp_path.rglob("world-views-comic-*.pt")) == stored
    assert torch.equal(first.images, again.images) and first.images.shape == (2, 3, 32, 32)
    assert torch.equal(first.images, datasets.render_set(latents, angles, look="comic", config=CFG).images)
    other = datasets.cached_views(cache=cache, latents=latents, angles=angles + 5, look="comic", config=CFG)
    assert len(list(tmp_path.rglob("world-views-comic-*.pt"))) == 2 and not torch.equal(other.images, first.images)
