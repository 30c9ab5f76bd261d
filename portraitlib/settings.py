"""Cache keys of profile settings. Artefact keys hold the settings *values* (this module), not the
source of ``profiles.py``: a new profile section or a new docstring re-keys nothing
(``provenance.imported_modules`` does not follow ``portraitlib.profiles``)."""
from __future__ import annotations

import dataclasses

STAGES = ("source", "encoder", "transfer")
"""The stages of the 2D style prior in order; each ``StylePriorConfig`` field names the first stage
it changes (``metadata["stage"]``), so a stage's key holds its fields and those before it."""


def settings_key(config, *, stage: str | None = None) -> dict:
    """The fields of a profile section that change what its stage builds, as a dict for a cache
    key: every field but those marked ``metadata={"key": False}`` (they choose which runs exist, not
    how one trains); with ``stage`` (style prior only), the fields of that stage and the earlier ones."""
    upto = STAGES[: STAGES.index(stage) + 1] if stage is not None else None
    values = dataclasses.asdict(config)
    return {f.name: values[f.name] for f in dataclasses.fields(config)
            if f.metadata.get("key", True) and (upto is None or f.metadata.get("stage") in upto)}
