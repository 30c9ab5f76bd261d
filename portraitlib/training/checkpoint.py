"""Resumable training state, written atomically so an interrupted run resumes where it stopped.

A checkpoint holds only tensors and plain values (state dicts, step, curves, RNG states) and is
read with ``weights_only=True``: no code in the file is ever executed.
"""
from __future__ import annotations

from pathlib import Path

import torch

from portraitlib.cache import atomic_torch_save, safe_torch_load


class TrainingCheckpoint:
    """Save and restore modules, optimizers, the step, logged curves and the RNG state."""

    def __init__(self, path: Path, *, modules: dict, optimizers: dict):
        self.path = Path(path)
        self.modules, self.optimizers = modules, optimizers

    def save(self, *, step: int, log: dict, generator: torch.Generator) -> None:
        atomic_torch_save({
            "step": step, "log": log, "rng": generator.get_state(), "torch_rng": torch.get_rng_state(),
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
        }, self.path)

    def restore(self, *, generator: torch.Generator) -> tuple[int, dict]:
        """(step, log) of the saved state, loaded into the modules and optimizers; (0, {}) if none."""
        if not self.path.exists():
            return 0, {}
        state = safe_torch_load(self.path)
        for k, m in self.modules.items():
            m.load_state_dict(state["modules"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        generator.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        return state["step"], state["log"]

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
