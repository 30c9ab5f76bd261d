"""FolderImages: an EG3D folder read on demand stands wherever a tensor of photos does."""
import pytest
import torch
from PIL import Image

from portraitlib.generator3d import resize
from portraitlib.training.gan2d import GAN2DConfig, TrainSettings, build_2d, train_2d
from portraitlib.world import datasets
from portraitlib.world.folder_images import FolderImages, mean_image

TINY = GAN2DConfig(resolution=16, z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=8)


@pytest.fixture()
def folder(tmp_path):
    g = torch.Generator().manual_seed(0)
    labels = torch.randn(10, 25, generator=g)
    datasets.write_eg3d(torch.rand(10, 3, 16, 16, generator=g), labels, tmp_path / "set")
    return tmp_path / "set"


def test_indexing_matches_the_loaded_tensor(folder):
    eager, labels, names = datasets.load_eg3d(folder)
    lazy = FolderImages(folder, threads=3)
    assert len(lazy) == 10 and lazy.shape == eager.shape and lazy.names == names
    assert torch.equal(lazy.labels, labels)
    idx = torch.tensor([7, 0, 7, 3])
    assert torch.equal(lazy[idx], eager[idx]) and torch.equal(lazy[2:9:3], eager[2:9:3])
    assert torch.equal(lazy[4], eager[4]) and torch.equal(lazy[-1], eager[-1])
    assert torch.equal(resize(lazy, 8)[idx], resize(eager, 8)[idx]), "resizing on read equals resizing the tensor"
    assert resize(lazy, 8).shape == (10, 3, 8, 8)
    with pytest.raises(IndexError):
        lazy[torch.tensor([10])]
    assert torch.allclose(mean_image(lazy, batch=3), eager.mean(0), atol=1e-6)
    assert torch.allclose(mean_image(eager, batch=4), eager.mean(0), atol=1e-6)


def test_bad_files_name_themselves(folder):
    lazy = FolderImages(folder)
    (folder / lazy.names[5]).write_bytes(b"not a png")
    with pytest.raises(OSError, match=lazy.names[5]):
        lazy[torch.tensor([5])]
    Image.new("RGB", (20, 20)).save(folder / lazy.names[6])
    with pytest.raises(ValueError, match="one folder holds one size"):
        lazy[torch.tensor([6])]


def test_training_on_a_folder_equals_training_on_the_tensor(folder):
    """The loops draw batches through ``data[idx]``: the same seed gives the same network."""
    eager = datasets.load_eg3d(folder)[0]
    settings = TrainSettings(steps=3, batch=4, r1_every=2)
    outs = []
    for images in (eager, FolderImages(folder, threads=2)):
        torch.manual_seed(0)
        g, d = build_2d(TINY)
        outs.append(train_2d(g, d, images, settings=settings, seed=0)[0].state_dict())
    assert all(torch.equal(a, outs[1][k]) for k, a in outs[0].items())
