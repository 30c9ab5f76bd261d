"""python -m portraitlib.prepare: photos and exemplars to EG3D layout, refusals with reasons, the
several-faces note, resumption after an interruption, and the paper profile's folders."""
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from portraitlib import cameras, faces, inventory, stylize
from portraitlib.prepare import __main__ as cli
from portraitlib.prepare import core
from portraitlib.prepare.sources import in_test_split, natural_key, output_name
from portraitlib.prepare.state import DATASET, JOURNAL, SUMMARY, PrepareError
from portraitlib.profile_loading import load_profile
from portraitlib.world.datasets import load_eg3d

GRACE = Path(__file__).parent / "data" / "grace_hopper_512x512.jpg"
SIZE = 128
WRITTEN = {"a/portrait.jpg", "b/portrait.jpg", "grace.webp", "three.png"}
REFUSED = {"flat.png": "no_face", "random.jpg": "not_image", "half.jpg": "unreadable", "tiny.png": "too_small",
           "notes.txt": "not_image", "b/small_face.png": "face_too_small"}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Four usable photos (two named portrait.jpg in different folders, a WebP, three faces side by
    side) and six that are not: no face, random bytes, a cut-off JPEG, a 40-px image, a text file
    and a face too small for ``min_face=64``."""
    root = tmp_path_factory.mktemp("photos")
    (root / "a").mkdir(), (root / "b").mkdir()
    grace = Image.open(GRACE).convert("RGB")
    grace.save(root / "a" / "portrait.jpg", quality=95)
    grace.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "b" / "portrait.jpg", quality=95)
    grace.save(root / "grace.webp", quality=95)
    Image.fromarray(np.concatenate([np.asarray(grace)] * 3, axis=1)).save(root / "three.png")
    Image.new("RGB", (256, 256), (90, 140, 200)).save(root / "flat.png")
    (root / "random.jpg").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    (root / "half.jpg").write_bytes(GRACE.read_bytes()[:6000])
    grace.resize((40, 40)).save(root / "tiny.png")
    grace.resize((128, 128)).save(root / "b" / "small_face.png")  # the face is ~48 px wide
    (root / "notes.txt").write_text("not a photo")
    return root


def run(photos: Path, out: Path, **kwargs) -> dict:
    return core.prepare(source=photos, out=out, kind="photos", resolution=SIZE, min_face=64, progress=False, **kwargs)


@pytest.fixture(scope="module")
def prepared(photos, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("prepared") / "celebahq_train"
    return out, run(photos, out)


def pngs(out: Path) -> dict[str, int]:
    """PNG name -> modification time (ns) of an output folder."""
    return {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}


def test_layout_is_eg3d_with_the_aligners_labels(photos, prepared):
    out, summary = prepared
    entries = json.loads((out / DATASET).read_text())["labels"]
    assert sorted(name for name, _ in entries) == sorted(pngs(out)) and len(entries) == len(WRITTEN)
    assert all(len(label) == 25 and all(np.isfinite(label)) for _, label in entries)
    for name, _ in entries:
        with Image.open(out / name) as image:
            assert image.size == (SIZE, SIZE) and image.mode == "RGB"
    images, labels, names = load_eg3d(out)
    assert images.shape == (len(WRITTEN), 3, SIZE, SIZE) and labels.shape == (len(WRITTEN), 25)
    torch_intrinsics = cameras.labels_from_angles(0.0, 0.0)[0, 16:]
    assert np.allclose(labels[:, 16:].numpy(), torch_intrinsics.numpy(), atol=1e-6)
    # Names: stable, unique for the two portrait.jpg, and each PNG is the aligner's crop and label.
    name_a, name_b = output_name(rel="a/portrait.jpg"), output_name(rel="b/portrait.jpg")
    assert name_a != name_b and name_a == output_name(rel="a/portrait.jpg")
    assert names == [output_name(rel=r) for r in ("a/portrait.jpg", "b/portrait.jpg", "grace.webp", "three.png")]
    aligned = faces.align_face(photos / "a" / "portrait.jpg", size=SIZE)
    assert np.allclose(labels[names.index(name_a)].numpy(), aligned.label.numpy(), atol=1e-5)
    assert np.abs(np.asarray(Image.open(out / name_a)).astype(int) - aligned.image).max() == 0
    yaw_a, yaw_b = (cameras.angles_from_labels(labels[names.index(n)])[0, 0].item() for n in (name_a, name_b))
    assert abs(yaw_a + yaw_b) < 3, "the mirrored photo gets the mirrored yaw"


def test_summary_counts_and_reasons(photos, prepared):
    out, summary = prepared
    assert json.loads((out / SUMMARY).read_text()) == summary
    assert summary["files_seen"] == len(WRITTEN) + len(REFUSED) == 10
    assert summary["written"] == summary["in_dataset"] == len(WRITTEN) and summary["already_there"] == 0
    assert {r["file"]: r["kind"] for r in summary["rejections"]} == REFUSED
    assert summary["reasons"] == {"not_image": 2, "unreadable": 1, "too_small": 1, "no_face": 1, "face_too_small": 1}
    reason = {r["file"]: r["reason"] for r in summary["rejections"]}
    assert reason["flat.png"] == "no face found" and "40x40" in reason["tiny.png"]
    assert "truncated" in reason["half.jpg"] and "no known image format" in reason["random.jpg"]
    assert ".txt" in reason["notes.txt"] and "at least 64 px" in reason["b/small_face.png"]
    assert str(photos) not in json.dumps(summary["rejections"]), "reasons name the file once, by its relative path"
    text = core.format_summary(summary)
    assert "4 written now" in text and "flat.png: no_face: no face found" in text


def test_several_faces_are_noted_with_the_one_taken(photos, prepared):
    out, summary = prepared
    (noted,) = summary["notes"]
    assert noted["file"] == "three.png" and noted["image"] == output_name(rel="three.png")
    match = re.fullmatch(r"3 faces found; took the largest, at x=(\d+),y=(\d+),w=(\d+),h=(\d+) \(pixels of the photo\)",
                         noted["notes"][0])
    x, y, w, h = map(int, match.groups())
    assert x // 512 == (x + w) // 512 and 150 < w < 260 and 150 < h < 260 and 0 < y < y + h < 512, "one tile's face"
    alone = faces.align_face(GRACE, size=SIZE)
    crop = np.asarray(Image.open(out / noted["image"])).astype(int)
    assert np.abs(crop - alone.image).mean() < 12, "the crop is that face, aligned as if alone"
    assert alone.notes == [] and alone.n_faces == 1


def test_stylize_command_shows_the_note(photos, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PORTRAITLIB_CACHE", str(tmp_path / "empty_cache"))  # nothing trained: exit 3 after aligning
    code = stylize.main([str(photos / "three.png"), "--style", "cartoon", "--out", str(tmp_path / "o"),
                         "--profile", "smoke"])
    captured = capsys.readouterr()
    assert code == 3 and "three.png: 3 faces found; took the largest, at x=" in captured.out


def test_rerun_writes_nothing_and_remakes_a_deleted_image(photos, prepared, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(prepared[0], out)
    before = pngs(out)
    again = run(photos, out)
    assert again["written"] == 0 and again["already_there"] == len(WRITTEN) and pngs(out) == before
    assert again["rejected"] == len(REFUSED) and again["rejected_earlier"] == len(REFUSED) - 1  # notes.txt: by name
    gone = output_name(rel="grace.webp")
    (out / gone).unlink()
    third = run(photos, out)
    assert third["written"] == 1 and third["in_dataset"] == len(WRITTEN)
    after = pngs(out)
    assert set(after) == set(before) and after[gone] != before[gone]
    assert {k: v for k, v in after.items() if k != gone} == {k: v for k, v in before.items() if k != gone}
    assert json.loads((out / DATASET).read_text()) == json.loads((prepared[0] / DATASET).read_text())


def test_interrupted_run_is_consistent_and_continues(photos, prepared, tmp_path, monkeypatch):
    out, calls, at_kill, real = tmp_path / "out", [], {}, core.prepare_one

    def interrupted(**kwargs):
        calls.append(kwargs["source"].rel)
        if len(calls) == 4:  # the state a hard kill (no clean-up) would leave
            at_kill["listed"] = sorted(name for name, _ in json.loads((out / DATASET).read_text())["labels"])
            at_kill["pngs"] = sorted(pngs(out))
            raise KeyboardInterrupt
        return real(**kwargs)

    monkeypatch.setattr(core, "prepare_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(photos, out)
    first_two = sorted(output_name(rel=r) for r in ("a/portrait.jpg", "b/portrait.jpg"))
    assert at_kill["listed"] == at_kill["pngs"] == first_two, "dataset.json is never behind a small set's PNGs"
    listed = [name for name, _ in json.loads((out / DATASET).read_text())["labels"]]
    assert sorted(listed) == at_kill["pngs"] == sorted(pngs(out)), "dataset.json matches the PNGs"
    monkeypatch.setattr(core, "prepare_one", real)
    resumed = run(photos, out)
    assert resumed["written"] + resumed["already_there"] == len(WRITTEN) and resumed["already_there"] == len(listed)
    assert json.loads((out / DATASET).read_text()) == json.loads((prepared[0] / DATASET).read_text())


def test_leftovers_of_a_killed_run_are_cleaned(photos, prepared, tmp_path):
    out = tmp_path / "killed"
    shutil.copytree(prepared[0], out)
    orphan = output_name(rel="vanished.jpg")  # a PNG written just before a kill, never journaled
    shutil.copy(out / output_name(rel="grace.webp"), out / orphan)
    (out / ".prepare-abc.tmp").write_bytes(b"half a png")
    with open(out / JOURNAL, "a") as journal:
        journal.write('{"source": "flat.png", "size": 1')  # a line cut short
    (out / DATASET).unlink()
    summary = run(photos, out)
    assert summary["removed_leftovers"] == [orphan] and summary["written"] == 0
    assert not (out / orphan).exists() and not (out / ".prepare-abc.tmp").exists()
    assert json.loads((out / DATASET).read_text()) == json.loads((prepared[0] / DATASET).read_text())


def test_limit_and_changed_settings(photos, tmp_path):
    out = tmp_path / "limited"
    first = run(photos, out, limit=2)
    assert first["in_dataset"] == 2 == len(pngs(out)) and first["over_limit"] > 0
    assert run(photos, out, limit=3)["written"] == 1 and len(pngs(out)) == 3
    with pytest.raises(PrepareError, match="resolution: 128 then, 64 now"):
        core.prepare(source=photos, out=out, kind="photos", resolution=64, progress=False)
    with pytest.raises(PrepareError, match="must not be the input folder"):
        run(photos, photos)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    Image.new("RGB", (8, 8)).save(foreign / "mine.png")
    with pytest.raises(PrepareError, match="mine.png"):
        run(photos, foreign)


def test_split_is_a_stable_share_of_file_names():
    assert sorted(["b/10.jpg", "b/2.jpg", "a/30.jpg"], key=natural_key) == ["a/30.jpg", "b/2.jpg", "b/10.jpg"]
    names = [f"celeba/{i}.jpg" for i in range(3000)]
    test = {n for n in names if in_test_split(rel=n, fraction=core.TEST_FRACTION)}
    assert 150 < len(test) < 250
    assert test == {n for n in names if in_test_split(rel="elsewhere/" + n.split("/")[1], fraction=core.TEST_FRACTION)}


def test_command_defaults_to_the_paper_folders_and_refuses_unknown_styles(photos, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PORTRAITLIB_CACHE", str(tmp_path / "cache"))
    assert cli.main(["exemplars", str(photos / "a"), "--style", "vangogh"]) == 2
    err = capsys.readouterr().err
    assert "unknown style 'vangogh'" in err and "cartoon, oil_painting, comic, anime, sculpture" in err
    assert cli.main(["exemplars", str(photos / "a"), "--style", "cartoon", "--resolution", "64", "--no-progress"]) == 0
    assert "1 written now" in capsys.readouterr().out
    needs = {need.what: need for need in inventory.needs(load_profile("paper"))}
    assert needs["cartoon exemplars (~20)"].present and not needs["anime exemplars (~20)"].present
    assert needs["cartoon exemplars (~20)"].path.parent == core.default_out(kind="exemplars", style="cartoon")
    assert needs["CelebA-HQ held-out photos"].path.parent == core.default_out(kind="photos", split="test")
    assert cli.main(["photos", str(photos / "b"), "--test-fraction", "0", "--out", str(tmp_path / "p"),
                     "--resolution", "64", "--min-face", "0", "--no-progress"]) == 0
    assert len(json.loads((tmp_path / "p" / DATASET).read_text())["labels"]) == 2  # portrait.jpg and small_face.png
    assert os.path.exists(tmp_path / "p" / SUMMARY)
