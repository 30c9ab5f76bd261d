"""A base model's release: weights as safetensors (the config in the metadata) and a model card
(JSON and markdown) beside them.

    write_release(out, net=G, kind=Kind.G_WORLD, config=cfg.to_dict(), card=card, discriminator=D)
    G, D_state = load_generator_3d(out / "G_world.safetensors", config=configs.MINI)
    S, gan_config, D_state = load_generator_2d(out / "S_world.safetensors")

The discriminator released beside a generator (``critic``) is stored under ``D.`` keys in the same
file; the loaders return its state dict (None when the file holds none).

Loading reads tensors only (safetensors runs no code), and a file whose format or config is not
the one asked for is refused with a message naming both.
"""
from __future__ import annotations

import enum
import io
import json
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
import torch
from torch import nn
from torchvision.utils import save_image

from portraitlib.cache import atomic_write_bytes
from portraitlib.device import seeded_build
from portraitlib.nets.configs import TriPlaneConfig
from portraitlib.provenance import git_commit
from portraitlib.nets.stylegan2 import StyleGAN2Generator
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.training.gan2d import GAN2DConfig, build_2d


class Kind(enum.Enum):
    """The base models of the head world; the value is the release's file stem."""

    G_WORLD = "G_world"
    S_WORLD = "S_world"
    WORLD_CLIP = "world_clip"
    EDITOR = "editor"

    @property
    def format(self) -> str:
        """What the metadata's ``format`` says of such a file (the editor: a diffusers folder, no such file)."""
        return {Kind.G_WORLD: "portraitlib TriPlaneGenerator", Kind.S_WORLD: "portraitlib StyleGAN2Generator",
                Kind.WORLD_CLIP: "portraitlib world CLIP (open_clip CLIP)",
                Kind.EDITOR: "diffusers StableDiffusionInstructPix2PixPipeline folder"}[self]


D_PREFIX = "D."
"""Key prefix of the released discriminator's tensors."""


def write_release(out: Path, *, net: nn.Module, kind: Kind, config: dict, card: dict,
                  discriminator: nn.Module | None = None, grid: bytes | None = None) -> dict[str, Path]:
    """Write the net's (and the discriminator's) weights (CPU float32 safetensors, ``config`` in the
    metadata) and the card, each atomically, as ``<kind>.safetensors`` and ``model_card.{json,md}``
    in ``out``, and ``grid`` (a PNG, :func:`held_out_grid`) as ``held_out_grid.png``."""
    out = Path(out)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    if discriminator is not None:
        state |= {D_PREFIX + k: v.detach().cpu().contiguous() for k, v in discriminator.state_dict().items()}
    metadata = {"config": json.dumps(config), "format": kind.format}
    paths = {"weights": out / f"{kind.value}.safetensors", "card_json": out / "model_card.json",
             "card_md": out / "model_card.md"}
    atomic_write_bytes(paths["weights"], save_safetensors(state, metadata=metadata))
    atomic_write_bytes(paths["card_json"], json.dumps(card, indent=2).encode())
    atomic_write_bytes(paths["card_md"], markdown(card).encode())
    if grid is not None:
        paths["grid"] = out / "held_out_grid.png"
        atomic_write_bytes(paths["grid"], grid)
    return paths


def made_by(*, command: str, seed: int, device) -> dict:
    """The card fields that say how a release was made: command, commit, seed, device, torch, threads."""
    return {"command": command, "commit": git_commit(), "seed": seed, "device": str(device),
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def held_out_grid(truth: torch.Tensor, made: torch.Tensor, *, per_row: int = 16) -> bytes:
    """A PNG of the held-out identities: rows of ``per_row`` true photos (N, 3, R, R) in [0, 1], each
    followed by the model's images of the same codes and cameras."""
    if truth.shape != made.shape:
        raise ValueError(f"truth {tuple(truth.shape)} and the model's images {tuple(made.shape)} differ in shape")
    rows = [part for i in range(0, len(truth), per_row)
            for part in (truth[i:i + per_row], made[i:i + per_row].to(truth.device))]
    buffer = io.BytesIO()
    save_image(torch.cat(rows).float().cpu(), buffer, nrow=per_row, format="png")
    return buffer.getvalue()


def read_metadata(path: Path, kind: Kind) -> dict:
    """The config recorded in a release file, after checking the file is a release of ``kind``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{kind.value} weights {path} not found: `make pretrain` makes them "
                                "(python -m portraitlib.pretrain --profile mini)")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as error:  # safetensors raises its own error types for a damaged header
        raise ValueError(f"{path} is not a safetensors file ({error})") from error
    if metadata.get("format") != kind.format:
        raise ValueError(f"{path} holds {metadata.get('format') or 'no portraitlib format'!r}, not {kind.format!r}")
    return json.loads(metadata["config"])


def read_card(path: Path) -> dict:
    """The model card (``model_card.json``) beside a release file; empty when there is none."""
    card = Path(path).with_name("model_card.json")
    return json.loads(card.read_text()) if card.is_file() else {}


def _split(path: Path) -> tuple[dict, dict | None]:
    """(the generator's state, the discriminator's state or None) of a release file."""
    state = load_safetensors(Path(path).read_bytes())
    d = {k[len(D_PREFIX):]: v for k, v in state.items() if k.startswith(D_PREFIX)}
    return {k: v for k, v in state.items() if not k.startswith(D_PREFIX)}, d or None


def load_state(path: Path) -> dict:
    """The tensors of a release file but a discriminator's (check its kind first: :func:`read_metadata`)."""
    return _split(path)[0]


def load_generator_3d(path: Path, *, config: TriPlaneConfig, seed: int = 0) -> tuple[TriPlaneGenerator, dict | None]:
    """A TriPlaneGenerator at ``config`` holding the weights of a G_world release (eval, frozen, CPU),
    and the released discriminator's state (or None)."""
    recorded = read_metadata(path, Kind.G_WORLD)
    if recorded != json.loads(json.dumps(config.to_dict())):
        changed = sorted(k for k in set(recorded) | set(config.to_dict())
                         if json.dumps(recorded.get(k)) != json.dumps(config.to_dict().get(k)))
        raise ValueError(f"{path} was trained at another generator config (differs in {changed}); "
                         "retrain it with `make pretrain` or name the config it was made with")
    with seeded_build(seed, "pretrain-load"):
        generator = TriPlaneGenerator(config=config)
    g_state, d_state = _split(path)
    generator.load_state_dict(g_state)
    return generator.eval().requires_grad_(False), d_state


def load_generator_2d(path: Path, *, seed: int = 0) -> tuple[StyleGAN2Generator, dict, dict | None]:
    """The StyleGAN2Generator of an S_world release (eval, frozen, CPU), its recorded ``GAN2DConfig``
    fields and the released discriminator's state (or None)."""
    recorded = read_metadata(path, Kind.S_WORLD)
    with seeded_build(seed, "pretrain-load"):
        generator = build_2d(GAN2DConfig(**recorded))[0]
    g_state, d_state = _split(path)
    generator.load_state_dict(g_state)
    return generator.eval().requires_grad_(False), recorded, d_state


def markdown(card: dict) -> str:
    """The card as a short markdown page: what it is, how it was made, how good it is, the curve."""
    lines = [f"# {card['name']}", "", card["description"], "",
             "| | |", "|---|---|"]
    lines += [f"| {k} | {card[k]} |" for k in ("command", "commit", "seed", "device", "wall_time_s", "train_time_s",
                                               "steps", "images_seen", "schedule_done", "route") if k in card]
    heading = card.get("quality_heading", "held-out identities, yaw -30..30")
    lines += ["", f"## Quality ({heading})", "", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4g} |" for k, v in card["quality"].items()]
    curve = card.get("curve", [])
    if curve and not isinstance(curve[0], dict):  # one loss per epoch
        lines += ["", "## Curve", "", "| epoch | loss |", "|---|---|"]
        lines += [f"| {i + 1} | {v:.4g} |" for i, v in enumerate(curve)]
    elif curve:
        keys = list(dict.fromkeys(k for record in curve for k in record))
        lines += ["", "## Curve", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(f"{r.get(k, '')}" if not isinstance(r.get(k), float) else f"{r[k]:.4g}"
                                    for k in keys) + " |" for r in curve]
    return "\n".join(lines) + "\n"
