"""The gates of issue #26: verdicts per stage and look, and the notebooks record the gated stages."""
import nbformat
import pytest

from portraitlib import gates
from portraitlib.gates import Gate, Stage
from portraitlib.paths import notebooks_dir


def test_gate_directions():
    assert Gate("identification", 0.7).met(0.7) and not Gate("identification", 0.7).met(0.69)
    assert Gate("pose_error_deg", 5.0, at_least=False).met(4.9) and not Gate("pose_error_deg", 5.0, False).met(5.1)


def test_check_reads_each_look_and_reports_missing_stages():
    results = {"01_style_prior": {"values": {"quality": {
        Stage.X_S.value: {"anime": {"face_detection": 0.95, "look_accuracy": 0.5, "identification": 0.8}}}}}}
    verdicts = gates.check(results)
    x_s = {v.gate.measure: v for v in verdicts if v.stage is Stage.X_S}
    assert x_s["face_detection"].met is True and x_s["look_accuracy"].met is False
    assert x_s["identification"].look == "anime" and x_s["identification"].notebook == "01_style_prior"
    missing = [v for v in verdicts if v.stage is Stage.G_WORLD]
    assert len(missing) == len(gates.GATES[Stage.G_WORLD]) and all(v.met is None for v in missing)
    text = "\n".join(gates.section(results))
    assert "**NOT met**" in text and "not recorded" in text
    assert f"2 of {len(verdicts)} gates met, 1 not met" in text


def test_a_recorded_stage_without_the_measure_is_not_met():
    results = {"04": {"values": {"quality": {Stage.W_PLUS_ENCODER.value: {"real": {"face_detection": 1.0}}}}}}
    (verdict,) = [v for v in gates.check(results) if v.stage is Stage.W_PLUS_ENCODER]
    assert verdict.value is None and verdict.met is None


@pytest.mark.parametrize("notebook, written", [
    ("01_style_prior", "gates.Stage.S_WORLD.value"), ("01_style_prior", "gates.Stage.X_S.value"),
    ("02_eg3d_prior", "gates.Stage.G_WORLD.value"),
    ("04_encoder", 'f"W+ encoder {name}: G(E(x)) at the photo\'s camera"'),
    ("05_guided_transfer", 'f"{title}: G_t(E(x)) views"'), ("10_3davatargan", "Stage.AVATAR_VIEWS.value")])
def test_notebooks_record_the_gated_stages(notebook, written):
    source = "\n".join(c.source for c in nbformat.read(notebooks_dir() / f"{notebook}.ipynb", as_version=4).cells)
    assert written in source
    if notebook == "04_encoder":  # the key the cycle-trained encoder's record gets
        assert '("with L_cyc", True)' in source
        assert Stage.W_PLUS_ENCODER.value == "W+ encoder with L_cyc: G(E(x)) at the photo's camera"
    if notebook == "05_guided_transfer":
        assert '"ours, L_prior + L_guide"' in source
        assert Stage.OURS_VIEWS.value == "ours, L_prior + L_guide: G_t(E(x)) views"
