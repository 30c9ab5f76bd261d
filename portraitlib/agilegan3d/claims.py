"""AgileGAN3D's claims that Tables 1-3 test, as typed keys and library checks.

    found = claims.table_claims(table1, table2, table3, perceptual="lpips_alex", subset_sizes=(20, 100, 1000))
    results["claims"] = claims.as_record(found)      # notebook 07 records them; report.py reads them

Each check compares means over the same held-out photos (lower is better for every error). A
claim whose table lacks the rows it needs (no ground truth outside the world) is left out.
"""
from __future__ import annotations

import enum

from portraitlib.evaluation import AGILEGAN_EG3D, OURS, PAPER_TABLE3, TOONIFY_EG3D

BASELINES = (AGILEGAN_EG3D, TOONIFY_EG3D)
"""The methods of Table 1 that "Ours" is compared with."""


class Claim(str, enum.Enum):
    """A claim of AgileGAN3D tested by notebook 07; the value is its key in the results JSON."""

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


def _mean(row: dict, key: str = "stylization_lpips") -> float:
    return row[key]["mean"]


def table_claims(table1: dict, table2: dict, table3: dict, *, perceptual: str,
                 subset_sizes: tuple[int, ...]) -> dict[Claim, bool]:
    """Each claim's verdict from the tables as notebook 07 records them: ``table1[style][method]``,
    ``table2["with L_cyc" | "without L_cyc"]`` (``mse``, ``ssim``, ``perceptual``) and
    ``table3[row]`` with ``set``, ``guided`` and the scores."""
    found = {Claim.OURS_BEATS_BASELINES: all(_mean(r[OURS]) < _mean(r[m]) for r in table1.values() for m in BASELINES)}
    if all("truth_lpips" in r[OURS] for r in table1.values()):
        found[Claim.OURS_BEATS_BASELINES_TRUTH] = all(_mean(r[OURS], "truth_lpips") < _mean(r[m], "truth_lpips")
                                                      for r in table1.values() for m in BASELINES)
    with_cyc, without = table2["with L_cyc"], table2["without L_cyc"]
    found[Claim.CYCLE_LOSS_BETTER] = (with_cyc["mse"] < without["mse"] and with_cyc["ssim"] > without["ssim"]
                                      and with_cyc[perceptual] < without[perceptual])
    row = {(r["set"], r["guided"]): r for r in table3.values()}
    sized = [row[f"prior_{k}", False] for k in subset_sizes if (f"prior_{k}", False) in row] + [row["prior_full", False]]
    found[Claim.ERROR_FALLS_WITH_SAMPLES] = all(_mean(a) > _mean(b) for a, b in zip(sized, sized[1:]))
    guided = row["prior_full", True]
    found[Claim.GUIDED_BELOW_UNGUIDED] = _mean(guided) < _mean(row["prior_full", False])
    found[Claim.ACCURATE_POSE_BELOW_ESTIMATED] = _mean(guided) < _mean(row["prior_full_estimated", True])
    return found


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


def as_record(found: dict[Claim, bool]) -> dict[str, bool]:
    """The verdicts keyed by their JSON names, for ``ctx.record``."""
    return {claim.value: holds for claim, holds in found.items()}
