"""Notebooks 07-08's parts: Toonify's inversion, scoring, tables, label noise and the report."""
import json

import pytest
import torch

from portraitlib import cameras, evaluation, metrics, report
from portraitlib.agilegan3d import prior_transfer
from portraitlib.nets import configs
from portraitlib.nets.triplane import TriPlaneGenerator


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return TriPlaneGenerator(config=configs.named("smoke")).eval().requires_grad_(False)


def test_optimised_codes_reconstruct_their_targets_better_than_the_start(generator):
    """Targets are renders of known codes: optimisation must move toward them."""
    labels = cameras.labels_from_angles(torch.tensor([0.0, 20.0]), torch.zeros(2))
    z = torch.randn(2, generator.config.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        targets = (generator.synthesis(generator.mapping(z, labels), labels, deterministic=True)["image"] + 1) / 2
    codes, losses = evaluation.optimize_codes(generator, targets, labels, perceptual=metrics.load_lpips("alex_or_random"),
                                              steps=15, lr=0.05, batch=2)
    assert codes.shape == (2, generator.num_ws_plus, generator.config.w_dim)
    assert len(losses) == 15 and losses[-1] < 0.7 * losses[0], losses
    assert not any(p.requires_grad for p in generator.parameters()), "G stays frozen"


def test_score_compares_renders_with_the_targets(generator):
    labels = cameras.labels_from_angles(torch.zeros(3), torch.zeros(3))
    ws = torch.randn(3, generator.num_ws_plus, generator.config.w_dim, generator=torch.Generator().manual_seed(2))
    method = evaluation.Method("m", generator, ws, "random codes")
    perceptual = metrics.load_lpips("alex_or_random")
    own = evaluation.render(generator, ws, labels)["image"]
    same = evaluation.score(method, labels=labels, x_s=own, perceptual=perceptual)
    other = evaluation.score(method, labels=labels, x_s=own.flip(0).roll(5, -1), perceptual=perceptual)
    assert same["stylization_lpips"]["mean"] < 1e-5 < other["stylization_lpips"]["mean"]
    assert set(same) == {"stylization_lpips"}, "without a world there is no ground-truth protocol"


def test_mean_sem_and_tables(tmp_path):
    stats = evaluation.mean_sem(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert stats["mean"] == pytest.approx(2.5) and stats["sem"] == pytest.approx(1.2910 / 2, abs=1e-4)
    text = evaluation.save_table(tmp_path, "t", ["a", "b"], [["x", 0.12345], ["y", None]], caption="Caption.")
    assert "| x | 0.123 |" in text and "| y | n/a |" in text and text.startswith("Caption.")
    assert (tmp_path / "t.csv").read_text().splitlines() == ["a,b", "x,0.12345", "y,"]


def test_label_noise_moves_labels_by_about_its_size():
    labels = cameras.labels_from_angles(torch.zeros(2000), torch.zeros(2000))
    tset = prior_transfer.TrainingSet("prior_full", torch.zeros(2000, 3, 2, 2), labels, "flat")
    noisy = prior_transfer.with_label_noise(tset, 10.0, seed=0)
    error = cameras.angular_error(noisy.labels, labels)
    # The angle of 2D Gaussian noise (std 10 per axis) is Rayleigh: mean 10 * sqrt(pi / 2) = 12.5.
    assert noisy.name == "prior_full_noise10" and error.mean().item() == pytest.approx(12.53, rel=0.05)
    assert torch.equal(noisy.images, tset.images)


def _record(folder, name, values):
    (folder / "results").mkdir(parents=True, exist_ok=True)
    (folder / "results" / f"{name}.json").write_text(json.dumps(
        {"values": values, "provenance": {"seed": 0, "git_commit": "abc", "device": "cpu", "versions": {}}}))


def test_report_gives_each_claim_a_verdict_from_the_results(tmp_path):
    row = lambda x: {"stylization_lpips": {"mean": x, "sem": 0.01}}  # noqa: E731
    _record(tmp_path, "07_evaluation", {
        "table1": {"cartoon": {"Ours": row(0.1), "AgileGAN-EG3D": row(0.2), "Toonify-EG3D": row(0.3)}},
        "table2": {"with L_cyc": {"mse": 0.02, "ssim": 0.5, "lpips_rand": 0.2, "identity_distance": 0.1},
                   "without L_cyc": {"mse": 0.01, "ssim": 0.6, "lpips_rand": 0.1, "identity_distance": 0.1}},
        "table3": {"20 (style prior)": {**row(0.3), "paper": 0.41}, "full (1280)": {**row(0.2), "paper": 0.227},
                   "full, guided, estimated pose": {**row(0.18), "paper": 0.211},
                   "full, guided": {**row(0.15), "paper": 0.2}},
        "claims": {"ours_beats_both_baselines_every_style (paper protocol)": True,
                   "cycle_loss_better_on_every_metric": False, "error_falls_with_samples (style-prior reading)": True,
                   "guided_below_unguided": True, "accurate_pose_below_estimated_pose": True},
        "seconds_total": 60.0})
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "07_table1.md").write_text("Caption.\n\n| a |\n|---|\n| 1 |\n")
    path = report.write("mini", folder=tmp_path)
    text = path.read_text()
    assert "### Table 1: ours beats AgileGAN-EG3D and Toonify-EG3D on every style: **reproduced**" in text
    assert "### Table 2: the cycle-consistency loss improves inversion on every metric: **not reproduced**" in text
    assert "Why, likely" in text and "| 1 |" in text and "### Table 1" in text
    verdicts = [title for title, verdict, _ in report.claims(json.loads(json.dumps(
        {"07_evaluation": {"values": json.loads((tmp_path / "results" / "07_evaluation.json").read_text())["values"]}})),
        "mini")]
    assert len(verdicts) == len(set(verdicts)) >= 5


def test_table_claims_read_the_tables_in_the_right_direction():
    from portraitlib.agilegan3d.claims import Claim, as_record, table_claims, twenty_samples_reading

    def s(x, truth=None):
        return {"stylization_lpips": {"mean": x}, **({"truth_lpips": {"mean": truth}} if truth is not None else {})}

    table1 = {"anime": {"Ours": s(0.1, 0.3), "AgileGAN-EG3D": s(0.2, 0.2), "Toonify-EG3D": s(0.3, 0.4)},
              "oil_painting": {"Ours": s(0.1, 0.1), "AgileGAN-EG3D": s(0.2, 0.2), "Toonify-EG3D": s(0.3, 0.3)}}
    table2 = {"with L_cyc": {"mse": 0.01, "ssim": 0.6, "lp": 0.2}, "without L_cyc": {"mse": 0.02, "ssim": 0.5, "lp": 0.1}}
    rows = [("exemplars", False, 0.5), ("prior_20", False, 0.4), ("prior_100", False, 0.3), ("prior_full", False, 0.2),
            ("prior_full_estimated", True, 0.15), ("prior_full", True, 0.18)]
    table3 = {f"{name} {guided}": {"set": name, "guided": guided, **s(x)} for name, guided, x in rows}
    found = table_claims(table1, table2, table3, perceptual="lp", subset_sizes=(20, 100))
    assert found[Claim.OURS_BEATS_BASELINES] and not found[Claim.OURS_BEATS_BASELINES_TRUTH]
    assert not found[Claim.CYCLE_LOSS_BETTER], "a worse LPIPS with L_cyc fails the claim"
    assert found[Claim.ERROR_FALLS_WITH_SAMPLES] and found[Claim.GUIDED_BELOW_UNGUIDED]
    assert not found[Claim.ACCURATE_POSE_BELOW_ESTIMATED]
    assert as_record(found)["guided_below_unguided"] is True
    reading = twenty_samples_reading(table3)
    assert reading["ours"] == {"exemplars False": 2.5, "prior_20 False": 2.0} and reading["closer"] == "prior_20 False"


def test_report_opens_with_the_quality_measures():
    quality = {"truth": {"real": {"n": 16, "face_detection": 1.0, "identification": 0.75}}}
    lines = report.quality_section({"00_world": {"values": {"quality": quality}}})
    text = "\n".join(lines)
    assert text.startswith("## Do the networks work?")
    assert "| 00_world | truth | real | 16 | 1.000 | 0.750 |" in text
    assert "No notebook recorded" in "\n".join(report.quality_section({"00_world": {"values": {}}}))
