import subprocess

from portraitlib import provenance
from portraitlib.provenance import imported_modules, module_version


def test_a_modules_version_covers_the_code_it_runs_and_not_the_whole_library():
    world = imported_modules("portraitlib.world.datasets")
    assert {"portraitlib.world.datasets", "portraitlib.world.renderer", "portraitlib.world.styles",
            "portraitlib.world.config", "portraitlib.cameras"} <= set(world)
    # `from portraitlib import cameras` must not pull in the package __init__ (all of the library),
    # nor a stage's settings: editing them would re-render the world's data sets.
    assert not {"portraitlib", "portraitlib.profiles", "portraitlib.pipeline"} & set(world)
    # A name that is not a module keeps the module it comes from.
    assert "portraitlib.metrics" in imported_modules("portraitlib.evaluation")
    assert module_version("portraitlib.world.datasets") != module_version("portraitlib.look")


def test_unknown_and_lookalike_names_are_not_library_modules():
    assert imported_modules("numpy") == () and imported_modules("portraitlibx.cameras") == ()
    assert imported_modules("portraitlib.no_such_module") == ()


def test_the_studys_own_outputs_do_not_make_the_commit_dirty(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "r.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "start")
    monkeypatch.setattr(provenance, "project_root", lambda: tmp_path)
    clean = provenance.git_commit()
    assert len(clean) == 40
    (tmp_path / "reports" / "r.json").write_text('{"a": 1}')
    assert provenance.git_commit() == clean, "a run's rewritten reports are not a code change"
    (tmp_path / "code.py").write_text("x = 2\n")
    assert provenance.git_commit() == clean + "+dirty"


def test_artefact_keys_follow_settings_values_not_the_profile_declarations():
    closure = imported_modules("portraitlib.agilegan3d.style_prior")
    assert "portraitlib.settings" in closure and "portraitlib.profiles" not in closure
