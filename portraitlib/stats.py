"""Paired comparisons of per-photo scores, with bootstrap intervals.

Every claim of the study compares two methods scored on the same held-out photos. A claim
"a is below b" is judged from the per-photo differences d_i = a_i - b_i, i = 1..N: their mean
and its 95% percentile-bootstrap interval (resampling the photos, with replacement,
``resamples`` times). The interval entirely below 0: the claim **holds**; entirely above 0: it
**fails**; across 0: **inconclusive** (N photos cannot tell the two apart).

    d = stats.paired_bootstrap(ours, baseline)      # {"mean": ..., "low": ..., "high": ..., "n": 32}
    stats.below(d)                                  # Verdict.HOLDS / FAILS / INCONCLUSIVE
    stats.every([stats.below(d1), stats.below(d2)]) # a claim made of several comparisons
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

import torch

from portraitlib.device import seeded_generator

RESAMPLES = 10_000
"""Bootstrap resamples of the photos per comparison."""
LEVEL = 0.95
"""Coverage of the interval."""
CHUNK_ELEMENTS = 2_000_000
"""Photo indices drawn at once (resamples x photos), to bound memory."""


class Verdict(str, enum.Enum):
    """The outcome of a claim judged by paired-bootstrap intervals; the value is its JSON name."""

    HOLDS = "holds"
    """Every comparison's interval lies on the claimed side of 0."""
    FAILS = "fails"
    """At least one comparison's interval lies on the other side of 0."""
    INCONCLUSIVE = "inconclusive"
    """No interval on the wrong side, but at least one crosses 0."""


def paired_bootstrap(a: Sequence[float] | torch.Tensor, b: Sequence[float] | torch.Tensor, *,
                     resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> dict[str, float]:
    """Mean of the paired differences a - b over N photos (a, b: (N,), the same photos in the
    same order) and its percentile-bootstrap interval at ``level``; deterministic for a seed."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    if a.ndim != 1 or a.shape != b.shape or len(a) < 2:
        raise ValueError(f"paired scores need two (N,) tensors of the same photos, N >= 2; got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    if not 0 < level < 1 or resamples < 1:
        raise ValueError(f"level must lie in (0, 1) and resamples be positive, got {level}, {resamples}")
    d = a - b
    rng = seeded_generator(seed, "cpu")  # the scores are CPU floats; the same stream on every machine
    chunk = max(1, CHUNK_ELEMENTS // len(d))  # resamples drawn at once: memory stays bounded at 2K photos too
    means = torch.cat([d[torch.randint(len(d), (min(chunk, resamples - start), len(d)), generator=rng)].mean(1)
                       for start in range(0, resamples, chunk)])
    tail = (1 - level) / 2
    low, high = torch.quantile(means, torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
    return {"mean": d.mean().item(), "low": low, "high": high, "n": len(d)}


def below(difference: dict[str, float]) -> Verdict:
    """The verdict on "a below b" from :func:`paired_bootstrap` (a, b)."""
    if difference["high"] < 0:
        return Verdict.HOLDS
    if difference["low"] > 0:
        return Verdict.FAILS
    return Verdict.INCONCLUSIVE


def every(verdicts: Iterable[Verdict]) -> Verdict:
    """A claim made of several comparisons: it fails if any fails, holds if all hold."""
    verdicts = list(verdicts)
    if not verdicts:
        raise ValueError("a claim needs at least one comparison")
    if Verdict.FAILS in verdicts:
        return Verdict.FAILS
    return Verdict.HOLDS if all(v == Verdict.HOLDS for v in verdicts) else Verdict.INCONCLUSIVE
