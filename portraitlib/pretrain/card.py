"""G_world's release: weights as safetensors and a model card (JSON and markdown) beside them.

    write_release(out, generator=G, card=card)   # out/G_world.safetensors, out/model_card.{json,md}
    G = load_weights(out / "G_world.safetensors", config=configs.MINI)
"""
from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from portraitlib.cache import atomic_write_bytes
from portraitlib.device import seeded_build
from portraitlib.nets.configs import TriPlaneConfig
from portraitlib.nets.triplane import TriPlaneGenerator

WEIGHTS = "G_world.safetensors"
"""File name of the weights in the output folder."""


def write_release(out: Path, *, generator: TriPlaneGenerator, card: dict) -> dict[str, Path]:
    """Write G's weights (CPU float32 safetensors, the config in the metadata) and the card, each
    atomically. Returns the paths by kind."""
    out = Path(out)
    state = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    metadata = {"config": json.dumps(generator.config.to_dict()), "format": "portraitlib TriPlaneGenerator"}
    paths = {"weights": out / WEIGHTS, "card_json": out / "model_card.json", "card_md": out / "model_card.md"}
    atomic_write_bytes(paths["weights"], save_safetensors(state, metadata=metadata))
    atomic_write_bytes(paths["card_json"], json.dumps(card, indent=2).encode())
    atomic_write_bytes(paths["card_md"], markdown(card).encode())
    return paths


def load_weights(path: Path, *, config: TriPlaneConfig, seed: int = 0) -> TriPlaneGenerator:
    """A TriPlaneGenerator at ``config`` holding the weights of ``path`` (eval, frozen, CPU)."""
    with seeded_build(seed, "pretrain-load"):
        generator = TriPlaneGenerator(config=config)
    generator.load_state_dict(load_safetensors(Path(path).read_bytes()))
    return generator.eval().requires_grad_(False)


def markdown(card: dict) -> str:
    """The card as a short markdown page: what it is, how it was made, how good it is, the curve."""
    lines = [f"# {card['name']}", "", card["description"], "",
             "| | |", "|---|---|"]
    lines += [f"| {k} | {card[k]} |" for k in ("command", "commit", "seed", "device", "wall_time_s", "steps",
                                               "images_seen", "schedule_done", "route")]
    lines += ["", "## Quality (held-out identities, yaw -30..30)", "", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4g} |" for k, v in card["quality"].items()]
    curve = card.get("curve", [])
    if curve:
        keys = list(dict.fromkeys(k for record in curve for k in record))
        lines += ["", "## Curve", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(f"{r.get(k, '')}" if not isinstance(r.get(k), float) else f"{r[k]:.4g}"
                                    for k in keys) + " |" for r in curve]
    return "\n".join(lines) + "\n"
