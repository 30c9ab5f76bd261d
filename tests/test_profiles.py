import dataclasses

import pytest

import portraitlib as pl
from portraitlib import profile_loading, profiles


def test_every_profile_loads_with_documented_fields():
    assert pl.available_profiles() == ["mini", "paper", "smoke"]
    for name in pl.available_profiles():
        profile = pl.load_profile(name)
        assert profile.name == name
        assert set(profile.world.styles) <= set(pl.STYLES)
    # Every config field carries a docstring in the source (the dataclass is the documentation).
    import inspect
    for cls in (profiles.Profile, profiles.WorldConfig, profiles.MetricsConfig, profiles.StylePriorConfig):
        source = inspect.getsource(inspect.getmodule(cls))
        for f in dataclasses.fields(cls):
            after = source.split(f"    {f.name}:", 1)[1].splitlines()[1].strip()
            assert after.startswith('"""'), f"{cls.__name__}.{f.name} has no docstring"


def test_mini_trains_all_five_styles_and_smoke_is_smaller():
    mini, smoke = pl.load_profile("mini"), pl.load_profile("smoke")
    assert mini.world.styles == pl.STYLES
    assert smoke.world.n_train < mini.world.n_train


def test_unknown_profile_lists_valid_ones():
    with pytest.raises(pl.ProfileError, match="valid profiles: mini, paper, smoke"):
        pl.load_profile("nosuch")


def _write(tmp_path, monkeypatch, text):
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "custom.yaml").write_text(text)
    monkeypatch.setattr(profile_loading, "params_dir", lambda: tmp_path / "params")


def test_unknown_key_names_valid_keys(tmp_path, monkeypatch):
    _write(tmp_path, monkeypatch, "description: x\nworld:\n  image_sise: 64\n")
    with pytest.raises(pl.ProfileError, match=r"image_sise.*valid keys.*image_size"):
        pl.load_profile("custom")


def test_bad_value_lists_valid_values(tmp_path, monkeypatch):
    _write(tmp_path, monkeypatch, "description: x\ndevice: gpu\n")
    with pytest.raises(pl.ProfileError, match=r"device 'gpu' is not valid; valid: \['auto', 'cpu', 'cuda', 'mps'\] or cuda:N"):
        pl.load_profile("custom")


def test_bad_style_and_bad_type(tmp_path, monkeypatch):
    _write(tmp_path, monkeypatch, "description: x\nworld:\n  styles: [cubism]\n")
    with pytest.raises(pl.ProfileError, match="valid styles"):
        pl.load_profile("custom")
    (tmp_path / "params" / "custom.yaml").write_text("description: x\nseed: zero\n")
    with pytest.raises(pl.ProfileError, match="expected int"):
        pl.load_profile("custom")


def test_style_prior_steps_are_validated(tmp_path, monkeypatch):
    _write(tmp_path, monkeypatch, "description: x\nstyle_prior:\n  transfer_steps: 0\n")
    with pytest.raises(pl.ProfileError, match="style_prior.transfer_steps must be positive"):
        pl.load_profile("custom")
    (tmp_path / "params" / "custom.yaml").write_text("description: x\nstyle_prior:\n  transfer_steps: 10\n"
                                                     "  transfer_select_from: 11\n")
    with pytest.raises(pl.ProfileError, match=r"transfer_select_from must lie in \[0, transfer_steps = 10\]"):
        pl.load_profile("custom")
