"""The claims of free-style fast 3D portraits (seed 001) as notebook 09 records them, for the report.

    for title, verdict, text in report_claims(values["09_free_style_3d"]):
        ...  # verdict: a stats.Verdict, or None where the run could not test the claim

Each claim is judged by paired-bootstrap intervals (``stats``): Alg. 1's over identities (warping
error of each identity's set), Tables 1 and 2 over held-out images against the world's truth.
"""
from __future__ import annotations

from portraitlib import stats

OURS = "ours"
"""Notebook 09's name of the full method's row (``styling.Variant.OURS``)."""


def _interval(d: dict) -> str:
    return f"{d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] over {d['n']}"


def _alg1(alg1: dict) -> tuple[str, stats.Verdict, str]:
    d = alg1["pooled_fixed_minus_random"]
    per_style = "; ".join(f"{s} {r['warping_error']['fixed']:.4f} against {r['warping_error']['random']:.4f} "
                          f"(G's own renders {r['warping_error']['renders']:.4f})" for s, r in alg1["per_style"].items())
    text = (f"Warping error between neighbouring edited views through G's depth, fixed noise (Alg. 1) against "
            f"fresh noise per view: {per_style}. Paired difference (fixed - random) over identities x styles: "
            f"{_interval(d)}.")
    closer = {s: r["lpips_vgg_to_true_style"] for s, r in alg1["per_style"].items() if "lpips_vgg_to_true_style" in r}
    if closer:
        text += (" LPIPS-VGG to the world's true stylized views, fixed against random: "
                 + "; ".join(f"{s} {r['fixed']:.3f} against {r['random']:.3f}" for s, r in closer.items()) + ".")
    return ("Free-style 3D (seed 001), Alg. 1: one noise for every view makes the edited views more consistent",
            stats.below(d), text)


def _ordered(claims: dict, prefix: str) -> stats.Verdict | None:
    picked = [stats.Verdict(c["verdict"]) for name, c in claims.items() if name.startswith(prefix)]
    return stats.every(picked) if picked else None


def _rows(rows: dict) -> str:
    return ", ".join(f"{name} " + (f"{r['lpips_vgg_to_truth']:.3f} " if "lpips_vgg_to_truth" in r else "")
                     + f"(CLIP {r['clip_score']:.3f})" for name, r in rows.items())


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


def report_claims(values: dict) -> list[tuple[str, stats.Verdict | None, str]]:
    """(title, verdict, paragraph) of each seed-001 claim notebook 09 recorded (``values``: its results)."""
    out = []
    if "alg1" in values:
        out.append(_alg1(values["alg1"]))
    claims = values.get("claims", {})
    if "table2" in values:
        t2 = values["table2"]
        listed = "; ".join(f"{name}: {_interval(c)}" for name, c in claims.items() if name.startswith("ours below"))
        out.append((f"Free-style 3D (seed 001), Table 2: every part of I2T brings its renders closer to the truth "
                    f"({t2['style']})", _ordered(claims, "ours below"),
                    f"LPIPS-VGG to the true stylized views at held-out cameras (world CLIP score): {_rows(t2['rows'])}. "
                    f"Paired differences over held-out images: {listed or 'not recorded (no truth)'}."))
    if "table1" in values:
        t1 = values["table1"]
        lines = "; ".join(f"{s}: {_rows(rows)}" for s, rows in t1.items())
        times = "; ".join(f"{s}: " + ", ".join(f"{name} {_duration(r['style_seconds'])}" for name, r in rows.items()
                                                if "style_seconds" in r) for s, rows in t1.items())
        verdicts = [v for v in (_ordered(claims, f"{s}: ours below") for s in t1) if v is not None]
        listed = "; ".join(f"{name}: {_interval(c)}" for name, c in claims.items() if ": ours below" in name)
        out.append(("Free-style 3D (seed 001), Table 1: ours is closer to the truth than the 3D GAN with the editor "
                    "per view and than AgileGAN3D", stats.every(verdicts) if verdicts else None,
                    f"LPIPS-VGG to the truth at held-out cameras (world CLIP score): {lines}. Paired differences "
                    f"over held-out images: {listed or 'not recorded (no truth)'}. Time per style on this machine: "
                    f"{times}."))
    return out
