"""The paper profile's code path end to end at a tiny size: photos and exemplars made by the prepare
command from the test photos, S and its discriminator read from an NVlabs-format pickle, notebooks
00-03 executed by the study runner (``tests/fixtures/profiles/paperlike.yaml``), G and D of
EG3D read from an official-format pickle too.

A broken paper path fails here. Notebooks 04-08 are not yet in this run."""
import json
import os
import shutil
import subprocess
import sys
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


@pytest.mark.parametrize("notebook", ["00", "01", "02", "03", "04", "05", "06", "07", "08"])
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
    elif notebook == "03":
        assert results["data_source"] == "celebahq" and results["G"] == "official paperlike-eg3d.pkl"
        assert results["table3"], "Table 3's L_prior variants ran on the prepared data"
    elif notebook == "04":
        assert results["data_source"] == "celebahq" and results["G"] == "official paperlike-eg3d.pkl"
        assert {"with L_cyc", "without L_cyc"} <= set(results["table2"])
    elif notebook == "05":
        assert results["data_source"] == "celebahq" and results["G"] == "official paperlike-eg3d.pkl"
        assert results["table3"], "Table 3's L_guide rows ran on the prepared data"
    elif notebook == "06":
        assert results["stylizer"]["G"] == "official paperlike-eg3d.pkl"
        assert results["cli"]["astronaut"]["exit_status"] == 0 and results["cli"]["coffee"]["exit_status"] == 2
    elif notebook == "07":
        assert results["data_source"] == "celebahq" and results["G"] == "official paperlike-eg3d.pkl"
        assert set(results["table1"]) == {"cartoon", "sculpture"} and results["table2"] and results["table3"]
    else:
        assert results["G"] == "official paperlike-eg3d.pkl"
        assert {"with L_cyc", "without L_cyc"} <= set(results["fig10"])
        assert set(results["fig5"]) == {"cartoon", "sculpture"}


def test_runner_under_torchrun_matches_one_process(paperlike, tmp_path):
    """``torchrun --nproc_per_node=2 -m portraitlib.run``: each rank runs notebook 04 in its own kernel,
    which joins the process group (gloo); the W+ encoders train data-parallel from a cache without
    them. Rank 0 alone writes the results, figures and artefacts; Table 2 equals the one-process run's."""
    single_record = paperlike / "reports" / "paperlike" / "results" / "04_encoder.json"
    if not single_record.exists():  # run alone (-k): the one-process run first
        with mock.patch.dict(os.environ, {"PORTRAITLIB_PROFILES": str(ROOT / "fixtures" / "profiles"),
                                          "PORTRAITLIB_CACHE": str(paperlike / "cache"),
                                          "PORTRAITLIB_REPORTS": str(paperlike / "reports")}):
            for notebook in ("00", "01", "02", "03", "04"):
                assert [o.status for o in run_study(profile="paperlike", only=notebook)] == ["ran"], notebook
    cache = tmp_path / "cache"
    shutil.copytree(paperlike / "cache", cache)
    trained = list((cache / "paperlike").rglob("eg3d-encoder-wplus-*"))
    assert len(trained) == 2, trained
    for path in trained:
        path.unlink()
    env = {**os.environ, "PORTRAITLIB_PROFILES": str(ROOT / "fixtures" / "profiles"),
           "PORTRAITLIB_CACHE": str(cache), "PORTRAITLIB_REPORTS": str(tmp_path / "reports")}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "portraitlib.run", "--profile", "paperlike", "--only", "04"],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(p.name for p in (cache / "paperlike").rglob("eg3d-encoder-wplus-*")) == sorted(
        p.name for p in trained), "the encoders were trained again, under the same keys"
    reports = tmp_path / "reports" / "paperlike"
    record = json.loads((reports / "results" / "04_encoder.json").read_text())
    assert record["provenance"]["processes"] == 2
    assert (reports / "notebooks" / ".rank1" / "04_encoder.ipynb").exists(), "rank 1 ran the notebook too"
    assert sorted(p.name for p in (reports / "results").iterdir()) == [".04_encoder.stamp.json", "04_encoder.json"]
    single = json.loads(single_record.read_text())["values"]
    for variant, row in single["table2"].items():
        for measure, value in row.items():
            assert record["values"]["table2"][variant][measure] == pytest.approx(value, rel=1e-3, abs=1e-6), (
                variant, measure)
