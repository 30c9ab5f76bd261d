"""The claims of MMFS (seed 004) as notebook 11 records them, for the report.

    for title, verdict, text in report_claims(values["11_mmfs"]):
        ...  # verdict: a stats.Verdict (paired intervals), a bool (a comparison of means), or None
"""
from __future__ import annotations

from portraitlib import stats


def _interval(c: dict) -> str:
    return f"{c['mean']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]"


def _guided(values: dict) -> list[tuple[str, stats.Verdict, str]]:
    held_out, claims, rows = values["held_out_style"], values.get("guided_claims", {}), values.get("guided", {})
    one = rows.get(f"{held_out} | one-shot | fine-tuned", {})
    zero = rows.get(f"{held_out} | zero-shot | fine-tuned", {})
    shown = (f"On {held_out} (a style no network of the study saw), one-shot: look {one.get('look_accuracy', 0):.2f}, "
             f"faces {one.get('face_detection', 0):.2f}, identification {one.get('identification', 0):.2f}, LPIPS to "
             f"the truth {one.get('lpips_vgg_to_truth', 0):.3f}; zero-shot (a name the world CLIP never read): look "
             f"{zero.get('look_accuracy', 0):.2f}, LPIPS {zero.get('lpips_vgg_to_truth', 0):.3f}.")
    out = []
    for key, title in (("one-shot LPIPS to the truth below the mapping alone",
                        "MMFS (seed 004), Fig. 10: fine-tuning to a reference moves the stylization towards its style"),
                       ("one-shot LPIPS to the truth below one-shot without the projection loss",
                        "MMFS (seed 004), Fig. 9: the projection loss improves one-shot stylization")):
        name = f"{held_out}: {key}"
        if name in claims:
            out.append((title, stats.Verdict(claims[name]["verdict"]),
                        f"Paired difference of LPIPS-VGG to the true {held_out} render over the held-out photos: "
                        f"{_interval(claims[name])}. {shown}"))
    return out


def report_claims(values: dict) -> list[tuple[str, stats.Verdict | bool | None, str]]:
    """(title, verdict, paragraph) of each seed-004 claim notebook 11 recorded (``values``: its results)."""
    out = []
    if "mapping" in values:
        m = values["mapping"]
        out.append(("MMFS (seed 004), Sec. 3.3: the CLIP mapping recovers a style from its image",
                    stats.Verdict(m["claim"]["verdict"]),
                    f"LPIPS-VGG of D(E(x), M(CLIP(I_ref))) to the reference stylization I_ref: "
                    f"{m['lpips_vgg_to_reference']:.3f}, against {m['another_style_lpips_vgg']:.3f} for another "
                    f"random style; paired difference {_interval(m['claim'])}."))
    out += _guided(values)
    table = values.get("table1", {})
    styles = sorted({name.split(" | ")[0] for name in table})
    if styles:
        lower = [s for s in styles if table[f"{s} | MMFS one-shot"]["kid"] < table[f"{s} | AgileGAN (notebook 01)"]["kid"]]
        out.append(("MMFS (seed 004), Table 1: stylizations closer to the style's distribution than the baselines'",
                    len(lower) == len(styles),
                    f"KID (VGG16 trunk) to the true style renders, MMFS one-shot below the 2D AgileGAN of notebook 01 "
                    f"in {len(lower)} of {len(styles)} styles ({', '.join(lower) or 'none'}); a comparison of means. "
                    "The 3D methods' rows are not yet in the table."))
    return out
