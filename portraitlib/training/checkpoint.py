"""Resumable training state, written atomically so an interrupted run resumes where it stopped.

A checkpoint holds only tensors and plain values (state dicts, step, curves, RNG states, the
early-stopping best weights) and is read with ``weights_only=True``: no code in the file is ever
executed. It loads across devices: tensors come back on the CPU and are copied into the modules
and optimizers wherever those live.
"""
from __future__ import annotations

from pathlib import Path

import torch

from portraitlib.cache import atomic_torch_save, safe_torch_load
from portraitlib.device import restore_rng_states, rng_states


class TrainingCheckpoint:
    """Save and restore modules, optimizers, the step, logged curves, the RNG states and the
    early-stopping ``best`` weights (so a resumed run returns what an uninterrupted one would)."""

    def __init__(self, path: Path, *, modules: dict, optimizers: dict):
        self.path = Path(path)
        self.modules, self.optimizers = modules, optimizers

    def save(self, *, step: int, log: dict, generator: torch.Generator, best: dict | None = None) -> None:
        atomic_torch_save({
            "step": step, "log": log, **rng_states(generator), "best": best,
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
        }, self.path)

    def restore(self, *, generator: torch.Generator) -> tuple[int, dict, dict | None]:
        """(step, log, best weights or None) of the saved state, loaded into the modules,
        optimizers and RNGs; (0, {}, None) if there is none."""
        if not self.path.exists():
            return 0, {}, None
        state = safe_torch_load(self.path)
        for k, m in self.modules.items():
            m.load_state_dict(state["modules"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        restore_rng_states(generator, state)
        return state["step"], state["log"], state.get("best")

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
