"""The paper profile's code path end to end at a tiny size: photos and exemplars made by the prepare
command from the test photos, S and its discriminator read from an NVlabs-format pickle, notebooks
00-03 executed by the study runner (``tests/fixtures/profiles/paperlike.yaml``), G and D of
EG3D read from an official-format pickle too.

A broken paper path fails here. Notebooks 04-08 are not yet in this run."""
import json
import os
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

import portraitlib as pl
from portraitlib.paths import weights_path
from portraitlib.prepare.__main__ import main as prepare
from portraitlib.run import run_study
from portraitlib.generator3d import discriminator_config
from portraitlib.nets import configs
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.training.gan2d import GAN2DConfig, build_2d
from tests.official_format import Fakes, fake_from_module, official_stylegan2, write

ROOT = Path(__file__).resolve().parent
GRACE = ROOT / "data" / "grace_hopper_512x512.jpg"


@pytest.fixture(scope="module")
def paperlike(tmp_path_factory):
    """A cache with the paperlike profile's prepared data and official-format S and EG3D; the environment
    (profiles folder, cache, reports) the runner's notebooks inherit."""
    root = tmp_path_factory.mktemp("paperlike")
    env = {"PORTRAITLIB_PROFILES": str(ROOT / "fixtures" / "profiles"), "PORTRAITLIB_CACHE": str(root / "cache"),
           "PORTRAITLIB_REPORTS": str(root / "reports")}
    with mock.patch.dict(os.environ, env):
        profile = pl.load_profile("paperlike")
        photos = root / "photos"
        photos.mkdir()
        grace, astronaut = np.asarray(Image.open(GRACE).convert("RGB")), skdata.astronaut()
        for i, image in enumerate((grace, astronaut, grace[:, ::-1], astronaut[:, ::-1])):
            Image.fromarray(np.ascontiguousarray(image)).save(photos / f"photo{i}.png")
        for split in ("train", "test"):
            assert prepare(["photos", str(photos), "--profile", "paperlike", "--split", split,
                            "--test-fraction", "0", "--no-progress"]) == 0
        for style in profile.world.styles:
            assert prepare(["exemplars", str(photos), "--profile", "paperlike", "--style", style,
                            "--no-progress"]) == 0
        cfg = GAN2DConfig(resolution=profile.world.image_size, z_dim=16, w_dim=32, mapping_layers=2,
                          channel_base=1024, channel_max=32, conv_clamp=256.0)
        torch.manual_seed(0)
        g, d = build_2d(cfg)
        path = weights_path(profile.style_prior.source_checkpoint)
        path.parent.mkdir(parents=True)
        fakes = Fakes(root / "EXECUTED")
        write(path, official_stylegan2(fakes, cfg, g, d))
        g3 = TriPlaneGenerator(config=configs.named(profile.eg3d.generator))
        d3 = discriminator_config(g3.config).build()
        write(weights_path(profile.eg3d.source_checkpoint), fakes.dumps(
            {"G_ema": fake_from_module(fakes, g3, "TriPlaneGenerator"),
             "D": fake_from_module(fakes, d3, "DualDiscriminator")}))
        yield root
    assert not (root / "EXECUTED").exists(), "code stored in the official-format pickle ran"


@pytest.mark.parametrize("notebook", ["00", "01", "02", "03"])
def test_paper_path_notebooks_run(paperlike, notebook):
    with mock.patch.dict(os.environ, {"PORTRAITLIB_PROFILES": str(ROOT / "fixtures" / "profiles"),
                                      "PORTRAITLIB_CACHE": str(paperlike / "cache"),
                                      "PORTRAITLIB_REPORTS": str(paperlike / "reports")}):
        outcomes = run_study(profile="paperlike", only=notebook)
    assert [o.status for o in outcomes] == ["ran"], [(o.notebook.name, o.status, o.message) for o in outcomes]
    record = json.loads(next((paperlike / "reports" / "paperlike" / "results").glob(f"{notebook}_*.json")).read_text())
    assert record["provenance"]["profile"] == "paperlike"
    results = record["values"]
    if notebook == "00":
        assert results["exemplar_labels"].keys() == {"cartoon", "sculpture"}
        assert min(c["detection_rate"] for c in results["exemplar_labels"].values()) >= 0.5
    elif notebook == "01":
        assert results["data_source"] == "celebahq"
        assert {s: r["paired"] for s, r in results["prior_sets"].items()} == {"cartoon": 4, "sculpture": 4}
    elif notebook == "02":
        assert results["data_source"] == "celebahq" and results["G_source"] == "official paperlike-eg3d.pkl"
        assert set(results["kid_test"]) == {"G", "real_train_vs_test"}
    else:
        assert results["data_source"] == "celebahq" and results["G"] == "official paperlike-eg3d.pkl"
        assert results["table3"], "Table 3's L_prior variants ran on the prepared data"
