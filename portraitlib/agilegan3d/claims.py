"""AgileGAN3D's claims that Tables 1-3 and the ablations test, as typed keys and library checks.

    found = claims.table_claims(table1, table2, table3, perceptual="lpips_alex", subset_sizes=(20, 100, 1000))
    results["claims"] = claims.as_record(found)      # notebook 07 records them; report.py reads them

Each claim is one or more paired comparisons of two methods on the same held-out photos ("a is
below b", lower is better for every error; SSIM is compared the other way round), each judged
by the 95% bootstrap interval of the mean per-photo difference (:mod:`portraitlib.stats`): a
claim holds when every interval lies on its side of 0, fails when any lies on the other, and is
inconclusive otherwise. The intervals are not corrected for multiple comparisons: a claim of ten
comparisons fails if any one of them does. A claim whose table lacks the rows it needs (no ground
truth outside the world, a single training-set size) is left out.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from portraitlib import stats
from portraitlib.evaluation import AGILEGAN_EG3D, OURS, PAPER_TABLE3, TOONIFY_EG3D
from portraitlib.stats import Verdict

BASELINES = (AGILEGAN_EG3D, TOONIFY_EG3D)
"""The methods of Table 1 that "Ours" is compared with."""


class Claim(str, enum.Enum):
    """A claim of AgileGAN3D tested by notebooks 07 and 08; the value is its key in the results JSON."""

    OURS_BEATS_BASELINES = "ours_beats_both_baselines_every_style (paper protocol)"
    """Table 1: lower Stylization LPIPS (to x_s) than both baselines on every style."""
    OURS_BEATS_BASELINES_TRUTH = "ours_beats_both_baselines_every_style (truth)"
    """Table 1, ground-truth protocol: lower LPIPS to the true stylized head on every style."""
    CYCLE_LOSS_BETTER = "cycle_loss_better_on_every_metric"
    """Table 2: with L_cyc, lower MSE, higher SSIM and lower LPIPS than without."""
    ERROR_FALLS_WITH_SAMPLES = "error_falls_with_samples (style-prior reading)"
    """Table 3: the error falls from 20 prior samples through 100, 1000, to the full prior."""
    GUIDED_BELOW_UNGUIDED = "guided_below_unguided"
    """Table 3 / Fig. 5: L_prior + L_guide below L_prior alone."""
    ACCURATE_POSE_BELOW_ESTIMATED = "accurate_pose_below_estimated_pose"
    """Table 3: paired (accurate) camera labels below labels estimated from the stylized images."""
    GUIDE_HELPS_EVERY_STYLE = "guide_helps_every_style"
    """Fig. 5 (notebook 08): L_prior + L_guide below L_prior alone on every style."""
    ACCURATE_LABELS_BEST = "most_accurate_labels_lowest_error"
    """Pose-accuracy ablation (notebook 08): the paired labels below every less accurate labelling."""


@dataclass(frozen=True)
class Judged:
    """A claim's verdict and the paired comparisons it was judged from."""

    verdict: Verdict
    """:func:`portraitlib.stats.every` of the comparisons' verdicts."""
    comparisons: tuple[dict, ...]
    """Each: ``comparison`` (what is claimed below what), the mean difference, its interval
    (``low``, ``high``), ``n`` photos and its own ``verdict``."""


def _below(label: str, a: dict, b: dict, key: str, *, seed: int) -> dict:
    """Row ``a`` below row ``b`` on measure ``key`` (each a ``mean_sem`` record with ``values``)."""
    difference = stats.paired_bootstrap(a[key]["values"], b[key]["values"], seed=seed)
    return {"comparison": f"{label} ({key})", **difference, "verdict": stats.below(difference).value}


def _judged(comparisons: list[dict]) -> Judged | None:
    """None for a claim its tables hold no comparison for (e.g. a single training-set size)."""
    if not comparisons:
        return None
    return Judged(stats.every(Verdict(c["verdict"]) for c in comparisons), tuple(comparisons))


def _present(found: dict[Claim, Judged | None]) -> dict[Claim, Judged]:
    return {claim: judged for claim, judged in found.items() if judged is not None}


def _mean(row: dict, key: str = "stylization_lpips") -> float:
    return row[key]["mean"]


def table_claims(table1: dict, table2: dict, table3: dict, *, perceptual: str, subset_sizes: tuple[int, ...],
                 seed: int = 0) -> dict[Claim, Judged]:
    """Each claim judged from the tables as notebook 07 records them: ``table1[style][method]``,
    ``table2["with L_cyc" | "without L_cyc"]`` (``mse``, ``ssim``, ``perceptual``) and
    ``table3[row]`` with ``set``, ``guided`` and the scores; every score a ``mean_sem`` record
    with the per-photo ``values``. ``seed`` fixes the bootstrap."""
    def beats(key: str) -> Judged:
        return _judged([_below(f"{style}: {OURS} - {m}", rows[OURS], rows[m], key, seed=seed)
                        for style, rows in table1.items() for m in BASELINES])

    found = {Claim.OURS_BEATS_BASELINES: beats("stylization_lpips")}
    if all("truth_lpips" in r[OURS] for r in table1.values()):
        found[Claim.OURS_BEATS_BASELINES_TRUTH] = beats("truth_lpips")
    with_cyc, without = table2["with L_cyc"], table2["without L_cyc"]
    found[Claim.CYCLE_LOSS_BETTER] = _judged([
        _below("with L_cyc - without", with_cyc, without, "mse", seed=seed),
        _below("without L_cyc - with", without, with_cyc, "ssim", seed=seed),
        _below("with L_cyc - without", with_cyc, without, perceptual, seed=seed)])
    row = {(r["set"], r["guided"]): r for r in table3.values()}
    names = [f"prior_{k}" for k in subset_sizes if (f"prior_{k}", False) in row] + ["prior_full"]
    found[Claim.ERROR_FALLS_WITH_SAMPLES] = _judged([
        _below(f"{b} - {a}", row[b, False], row[a, False], "stylization_lpips", seed=seed)
        for a, b in zip(names, names[1:])])
    guided = row["prior_full", True]
    found[Claim.GUIDED_BELOW_UNGUIDED] = _judged([
        _below("guided - unguided", guided, row["prior_full", False], "stylization_lpips", seed=seed)])
    found[Claim.ACCURATE_POSE_BELOW_ESTIMATED] = _judged([
        _below("paired labels - estimated", guided, row["prior_full_estimated", True], "stylization_lpips", seed=seed)])
    return _present(found)


def ablation_claims(fig5: dict, pose: dict, *, paired: str, seed: int = 0) -> dict[Claim, Judged]:
    """Notebook 08's claims: ``fig5[style]`` with rows ``L_prior`` and ``L_prior + L_guide``, and
    ``pose[variant]`` (scored rows of the pose-accuracy ablation, ``paired`` the accurate one)."""
    return _present({Claim.GUIDE_HELPS_EVERY_STYLE: _judged([
                _below(f"{style}: guided - L_prior", rows["L_prior + L_guide"], rows["L_prior"], "stylization_lpips",
                       seed=seed) for style, rows in fig5.items()]),
            Claim.ACCURATE_LABELS_BEST: _judged([
                _below(f"{paired} - {name}", pose[paired], row, "stylization_lpips", seed=seed)
                for name, row in pose.items() if name != paired])})


def twenty_samples_reading(table3: dict) -> dict:
    """Which reading of the paper's "20 samples" (20 raw exemplars, or 20 prior samples) behaves
    like the paper's: each one's error as a ratio to the full prior's, beside the paper's ratio."""
    paper_ratio = PAPER_TABLE3["20"] / PAPER_TABLE3["full"]
    label = {(r["set"], r["guided"]): k for k, r in table3.items()}
    full = _mean(table3[label["prior_full", False]])
    ours = {label[key]: _mean(table3[label[key]]) / full for key in (("exemplars", False), ("prior_20", False))
            if key in label}
    return {"paper_ratio_to_full": paper_ratio, "ours": ours,
            "closer": min(ours, key=lambda k: abs(ours[k] - paper_ratio))}


def as_record(found: dict[Claim, Judged]) -> dict[str, dict]:
    """The verdicts and their comparisons keyed by the claims' JSON names, for ``ctx.record``."""
    return {claim.value: {"verdict": judged.verdict.value, "comparisons": list(judged.comparisons)}
            for claim, judged in found.items()}
