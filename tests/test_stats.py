"""Paired-bootstrap comparisons (portraitlib.stats): intervals, verdicts, coverage."""
import pytest
import torch

from portraitlib import stats
from portraitlib.stats import Verdict


def test_interval_holds_the_mean_difference_and_is_reproducible():
    a = torch.linspace(0.1, 0.5, 32)
    b = a + 0.05 + 0.02 * torch.sin(torch.arange(32.0))
    d = stats.paired_bootstrap(a, b, seed=3)
    assert d["n"] == 32 and d["low"] <= d["mean"] <= d["high"]
    assert d["mean"] == pytest.approx((a - b).double().mean().item())
    assert d == stats.paired_bootstrap(a.tolist(), b.tolist(), seed=3), "the same seed gives the same interval"
    assert d != stats.paired_bootstrap(a, b, seed=4)


def test_pairing_removes_the_spread_shared_by_both_methods():
    """Photos differ a lot from each other, the methods by a little on every photo: paired, the
    difference is clear; the photos' own spread (0.4 wide) does not enter the interval."""
    base = torch.linspace(0.0, 0.4, 32, dtype=torch.float64)
    d = stats.paired_bootstrap(base, base + 0.01, seed=0)
    assert d["high"] - d["low"] < 1e-12 and d["mean"] == pytest.approx(-0.01)
    assert stats.below(d) is Verdict.HOLDS


def test_verdicts_from_the_interval():
    assert stats.below({"low": -0.3, "high": -0.1}) is Verdict.HOLDS
    assert stats.below({"low": 0.1, "high": 0.3}) is Verdict.FAILS
    assert stats.below({"low": -0.1, "high": 0.1}) is Verdict.INCONCLUSIVE
    alternating = torch.tensor([0.1, 0.3] * 16)
    assert stats.below(stats.paired_bootstrap(alternating, alternating.flip(0))) is Verdict.INCONCLUSIVE


def test_a_claim_of_several_comparisons():
    assert stats.every([Verdict.HOLDS, Verdict.HOLDS]) is Verdict.HOLDS
    assert stats.every([Verdict.HOLDS, Verdict.INCONCLUSIVE]) is Verdict.INCONCLUSIVE
    assert stats.every([Verdict.INCONCLUSIVE, Verdict.FAILS, Verdict.HOLDS]) is Verdict.FAILS
    with pytest.raises(ValueError):
        stats.every([])


def test_the_95_percent_interval_covers_the_true_difference_about_95_percent_of_the_time():
    rng = torch.Generator().manual_seed(0)
    covered = 0
    trials = 200
    for t in range(trials):
        a = torch.randn(32, generator=rng) * 0.1 + 0.3
        b = a - 0.02 + torch.randn(32, generator=rng) * 0.05  # true mean difference +0.02
        d = stats.paired_bootstrap(a, b, resamples=2000, seed=t)
        covered += d["low"] <= 0.02 <= d["high"]
    assert 0.88 <= covered / trials <= 0.99, covered / trials


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="same photos"):
        stats.paired_bootstrap([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ValueError, match="N >= 2"):
        stats.paired_bootstrap([0.1], [0.2])
    with pytest.raises(ValueError, match="level"):
        stats.paired_bootstrap([0.1, 0.2], [0.2, 0.3], level=1.5)
