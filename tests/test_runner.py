"""The runner end to end on fixture notebooks (papermill, a real kernel)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"


def run(args, tmp_path):
    return subprocess.run([sys.executable, "-m", "portraitlib.run", *args,
                           "--reports-dir", str(tmp_path / "reports")],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    shutil.copy(FIXTURES / "01_records.ipynb", folder)
    return folder


def test_unknown_profile_exits_nonzero_naming_valid_ones(tmp_path):
    done = run(["--profile", "nosuch"], tmp_path)
    assert done.returncode != 0
    assert "valid profiles: mini, paper, smoke" in done.stderr


def test_runs_injects_parameters_records_then_skips(tmp_path, notebooks):
    done = run(["--profile", "smoke", "--seed", "5", "--notebooks-dir", str(notebooks)], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((tmp_path / "reports" / "smoke" / "results" / "01_records.json").read_text())
    assert result["values"] == {"seed_used": 5, "profile_used": "smoke", "image_size": 64}
    executed = tmp_path / "reports" / "smoke" / "notebooks" / "01_records.ipynb"
    papermill_meta = json.loads(executed.read_text())["metadata"]["papermill"]
    assert papermill_meta["input_path"] == papermill_meta["output_path"] == "01_records.ipynb", "no machine paths"
    assert (tmp_path / "reports" / "smoke" / "report.md").read_text().startswith("# portraitlib study report: profile `smoke`")
    again = run(["--profile", "smoke", "--seed", "5", "--notebooks-dir", str(notebooks)], tmp_path)
    assert again.returncode == 0 and "1 skipped" in again.stdout
    other_seed = run(["--profile", "smoke", "--seed", "6", "--notebooks-dir", str(notebooks)], tmp_path)
    assert "1 ran" in other_seed.stdout
    forced = run(["--profile", "smoke", "--seed", "6", "--force", "--notebooks-dir", str(notebooks)], tmp_path)
    assert "1 ran" in forced.stdout


def test_failure_stops_the_run_and_names_the_notebook(tmp_path, notebooks):
    shutil.copy(FIXTURES / "02_raises.ipynb", notebooks)
    shutil.copy(FIXTURES / "03_after.ipynb", notebooks)
    done = run(["--profile", "smoke", "--notebooks-dir", str(notebooks)], tmp_path)
    assert done.returncode == 1
    assert f"notebook failed: {notebooks / '02_raises.ipynb'}" in done.stderr
    assert "fixture failure on purpose" in done.stdout
    assert not (tmp_path / "reports" / "smoke" / "results" / "03_after.json").exists()
    assert not (tmp_path / "reports" / "smoke" / "report.md").exists(), "no report after a failed run"


def test_only_and_from_select_notebooks(tmp_path, notebooks):
    shutil.copy(FIXTURES / "02_raises.ipynb", notebooks)
    shutil.copy(FIXTURES / "03_after.ipynb", notebooks)
    only = run(["--profile", "smoke", "--only", "03", "--notebooks-dir", str(notebooks)], tmp_path)
    assert only.returncode == 0 and "1 ran" in only.stdout
    start = run(["--profile", "smoke", "--from", "02", "--notebooks-dir", str(notebooks)], tmp_path)
    assert start.returncode == 1 and "02_raises" in start.stderr
    missing = run(["--profile", "smoke", "--only", "42", "--notebooks-dir", str(notebooks)], tmp_path)
    assert missing.returncode != 0 and "no notebook '42'" in missing.stderr


def test_check_lists_what_a_profile_reads(tmp_path, monkeypatch, capsys):
    """``--check``: the paper profile's data and official weights are missing here (exit 2, each
    named with where to get it); the world profiles need only what ``make`` installs (exit 0).
    Everything is looked up under the one cache root."""
    from portraitlib.run import main

    monkeypatch.setenv("PORTRAITLIB_CACHE", str(tmp_path / "cache"))
    assert main(["--profile", "paper", "--check"]) == 2
    out = capsys.readouterr().out
    assert "[MISSING] EG3D FFHQ 512-128" in out and str(tmp_path / "cache" / "weights" / "ffhq512-128.pkl") in out
    assert "celebahq_train" in out and "required file(s) missing" in out
    assert main(["--profile", "smoke", "--check"]) == 0
    assert "everything the profile reads is present" in capsys.readouterr().out


def test_relative_profiles_folder_reaches_the_kernels(tmp_path, notebooks):
    """The kernels run in the notebooks' folder: a relative $PORTRAITLIB_PROFILES still names the
    caller's folder."""
    mine = tmp_path / "profiles"
    mine.mkdir()
    root = Path(__file__).resolve().parent.parent
    (mine / "mine.yaml").write_text((root / "params" / "smoke.yaml").read_text().replace("image_size: 64",
                                                                                         "image_size: 48", 1))
    env = {**os.environ, "PORTRAITLIB_PROFILES": "profiles"}
    done = subprocess.run([sys.executable, "-m", "portraitlib.run", "--profile", "mine", "--notebooks-dir",
                           str(notebooks), "--reports-dir", "reports"], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((tmp_path / "reports" / "mine" / "results" / "01_records.json").read_text())
    assert result["values"]["profile_used"] == "mine" and result["values"]["image_size"] == 48
