"""Notebooks 07-08's parts: Toonify's inversion, scoring, tables, label noise and the report."""
import itertools
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
    assert stats["values"] == [1.0, 2.0, 3.0, 4.0], "the per-photo values, in order, for the paired claims"
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


_PHASES = itertools.count()


def _scores(mean: float, n: int = 32, *, key: str = "stylization_lpips", wobble: float = 0.01) -> dict:
    """A ``mean_sem`` record of n photos around ``mean``; each record's photo-to-photo pattern is
    shifted, so paired differences vary from photo to photo and their intervals have a width."""
    return {key: evaluation.mean_sem(mean + wobble * torch.sin(torch.arange(float(n)) + next(_PHASES)))}


def _tables():
    """Tables 1-3 as notebook 07 records them: ours beats both baselines (paper protocol) but not
    AgileGAN-EG3D against the truth; L_cyc better on MSE and SSIM, worse on LPIPS; the error falls
    with samples; guided below unguided; the estimated-pose row below the accurate one."""
    def s(x, truth=None):
        return _scores(x) | (_scores(truth, key="truth_lpips") if truth is not None else {})

    table1 = {"anime": {"Ours": s(0.1, 0.3), "AgileGAN-EG3D": s(0.2, 0.2), "Toonify-EG3D": s(0.3, 0.4)},
              "oil_painting": {"Ours": s(0.1, 0.1), "AgileGAN-EG3D": s(0.2, 0.2), "Toonify-EG3D": s(0.3, 0.3)}}
    table2 = {"with L_cyc": _scores(0.01, key="mse") | _scores(0.6, key="ssim") | _scores(0.2, key="lp"),
              "without L_cyc": _scores(0.02, key="mse") | _scores(0.5, key="ssim") | _scores(0.1, key="lp")}
    rows = [("exemplars", False, 0.5, "20 (exemplars)"), ("prior_20", False, 0.4, "20 (style prior)"),
            ("prior_100", False, 0.3, "100"), ("prior_full", False, 0.2, "full (1280)"),
            ("prior_full_estimated", True, 0.15, "full, guided, estimated pose"),
            ("prior_full", True, 0.18, "full, guided")]
    table3 = {label: {"set": name, "guided": guided, "paper": 0.2, **s(x)} for name, guided, x, label in rows}
    return table1, table2, table3


def test_table_claims_read_the_tables_in_the_right_direction():
    from portraitlib.agilegan3d.claims import Claim, as_record, table_claims, twenty_samples_reading
    from portraitlib.stats import Verdict

    found = table_claims(*_tables(), perceptual="lp", subset_sizes=(20, 100))
    assert found[Claim.OURS_BEATS_BASELINES].verdict is Verdict.HOLDS
    assert len(found[Claim.OURS_BEATS_BASELINES].comparisons) == 4, "2 styles x 2 baselines"
    assert found[Claim.OURS_BEATS_BASELINES_TRUTH].verdict is Verdict.FAILS
    cycle = found[Claim.CYCLE_LOSS_BETTER]
    assert cycle.verdict is Verdict.FAILS, "a worse LPIPS with L_cyc fails the claim"
    assert [c["verdict"] for c in cycle.comparisons] == ["holds", "holds", "fails"], "SSIM: higher is better"
    assert found[Claim.ERROR_FALLS_WITH_SAMPLES].verdict is Verdict.HOLDS
    assert found[Claim.GUIDED_BELOW_UNGUIDED].verdict is Verdict.HOLDS
    assert found[Claim.ACCURATE_POSE_BELOW_ESTIMATED].verdict is Verdict.FAILS
    record = json.loads(json.dumps(as_record(found)))
    assert record["guided_below_unguided"]["verdict"] == "holds"
    guided = record["guided_below_unguided"]["comparisons"][0]
    assert guided["mean"] == pytest.approx(0.18 - 0.2, abs=2e-3) and guided["low"] < guided["mean"] < guided["high"]
    table3 = _tables()[2]
    reading = twenty_samples_reading(table3)
    assert reading["ours"] == pytest.approx({"20 (exemplars)": 2.5, "20 (style prior)": 2.0}, rel=1e-2)
    assert reading["closer"] == "20 (style prior)"


def test_a_difference_the_photos_cannot_resolve_is_inconclusive():
    from portraitlib.agilegan3d.claims import Claim, ablation_claims
    from portraitlib.stats import Verdict

    noisy = {"stylization_lpips": evaluation.mean_sem(torch.tensor([0.1, 0.3] * 16))}
    flipped = {"stylization_lpips": evaluation.mean_sem(torch.tensor([0.3, 0.1] * 16))}
    fig5 = {"cartoon": {"L_prior": _scores(0.3), "L_prior + L_guide": _scores(0.2)},
            "comic": {"L_prior": noisy, "L_prior + L_guide": flipped}}
    pose = {"paired labels": _scores(0.2), "paired + 5 deg noise": _scores(0.25), "estimated": _scores(0.1)}
    found = ablation_claims(fig5, pose, paired="paired labels")
    assert found[Claim.GUIDE_HELPS_EVERY_STYLE].verdict is Verdict.INCONCLUSIVE
    assert [c["verdict"] for c in found[Claim.GUIDE_HELPS_EVERY_STYLE].comparisons] == ["holds", "inconclusive"]
    assert found[Claim.ACCURATE_LABELS_BEST].verdict is Verdict.FAILS
    assert set(ablation_claims({}, {"paired labels": _scores(0.2)}, paired="paired labels")) == set(), \
        "a claim with nothing to compare is left out"


def test_report_gives_each_claim_a_verdict_from_the_results(tmp_path):
    from portraitlib.agilegan3d.claims import ablation_claims, as_record, table_claims

    table1, table2, table3 = _tables()
    _record(tmp_path, "07_evaluation", {
        "table1": table1, "table2": table2, "table3": table3,
        "claims": as_record(table_claims(table1, table2, table3, perceptual="lp", subset_sizes=(20, 100))),
        "seconds_total": 60.0})
    noisy = {"stylization_lpips": evaluation.mean_sem(torch.tensor([0.1, 0.3] * 16))}
    fig5 = {"cartoon": {"L_prior": noisy, "L_prior + L_guide": {"stylization_lpips": evaluation.mean_sem(
        torch.tensor([0.3, 0.1] * 16))}}}
    _record(tmp_path, "05_guided_transfer", {"guide_helps": {"cartoon": True}})
    _record(tmp_path, "08_ablations", {
        "pose_accuracy": {"paired labels": {"label_error_deg": 0.0, "stylization_lpips": 0.2},
                          "estimated": {"label_error_deg": 4.0, "stylization_lpips": 0.3}},
        "claims": as_record(ablation_claims(fig5, {"paired labels": _scores(0.2), "estimated": _scores(0.3)},
                                            paired="paired labels"))})
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "07_table1.md").write_text("Caption.\n\n| a |\n|---|\n| 1 |\n")
    path = report.write("mini", folder=tmp_path)
    text = path.read_text()
    assert "### Table 1: ours beats AgileGAN-EG3D and Toonify-EG3D on every style: **reproduced**" in text
    assert "the claim is **not reproduced**" in text, "the truth protocol's verdict on Table 1"
    assert "### Table 2: the cycle-consistency loss improves inversion on every metric: **not reproduced**" in text
    assert "### Fig. 5: L_guide helps every style: **inconclusive**" in text, "08's intervals decide, not 05's means"
    assert "### Pose accuracy: the most accurate labels give the lowest stylization error: **reproduced**" in text
    assert "95% bootstrap interval" in text and "anime: Ours - AgileGAN-EG3D (stylization_lpips) -0.1" in text
    assert "Why, likely" in text and "| 1 |" in text and "### Table 1" in text
    titles = [title for title, verdict, _ in report.claims(report._load(tmp_path), "mini")]
    assert len(titles) == len(set(titles)) >= 7


def test_the_style_prior_claim_is_read_from_the_recorded_errors():
    def row(x_s, photo):
        return {"x_s": {"mse": 0.1, "ssim": 0.5, "lpips_alex": x_s}, "photo": {"mse": 0.1, "ssim": 0.5, "lpips_alex": photo}}

    found = {t: (v, text) for t, v, text in report.claims(
        {"01_style_prior": {"values": {"prior_error": {"cartoon": row(0.1, 0.2), "sculpture": row(0.35, 0.3)}}}}, "mini")}
    verdict, text = found["The few-shot 2D style prior stylizes real photos (Sec. 3.1)"]
    assert verdict == report.NOT_REPRODUCED and "1 of 2 styles" in text and "sculpture 0.350 against 0.300" in text
    outside = report.claims({"01_style_prior": {"values": {"prior_error": {"cartoon": {"identity_distance_x_xs": 0.1}}}}},
                            "paper")
    assert outside[0][1] == report.NOT_TESTABLE, "no truth, no verdict"


def test_report_opens_with_the_quality_measures():
    quality = {"truth": {"real": {"n": 16, "face_detection": 1.0, "identification": 0.75}}}
    lines = report.quality_section({"00_world": {"values": {"quality": quality}}})
    text = "\n".join(lines)
    assert text.startswith("## Do the networks work?")
    assert "| 00_world | truth | real | 16 | 1.000 | 0.750 |" in text
    assert "No notebook recorded" in "\n".join(report.quality_section({"00_world": {"values": {}}}))
