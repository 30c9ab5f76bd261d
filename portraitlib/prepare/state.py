"""The output side of the preparation: atomic files, the journal that makes a run resumable, and
``dataset.json`` kept consistent with the PNGs present.

An output folder holds the PNGs, ``dataset.json`` (EG3D's ``{"labels": [[name, [25 floats]], ...]}``,
exactly the PNGs present), ``prepare_journal.jsonl`` (a settings line, then one line per file
prepared or refused, appended and synced as it happens) and ``prepare_summary.json``. A killed
run leaves at worst a temporary file, one PNG not yet in the journal and a ``dataset.json`` behind
the journal; the next run (:class:`Journal`) removes the first two and rewrites the last.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from portraitlib.cache import atomic_write_bytes
from portraitlib.prepare.sources import OUTPUT_PATTERN, Source, natural_key

DATASET = "dataset.json"
JOURNAL = "prepare_journal.jsonl"
SUMMARY = "prepare_summary.json"


class PrepareError(ValueError):
    """An output folder that cannot be continued with these settings (the message says why)."""


def _read_lines(path: Path) -> list[dict]:
    """The JSON objects of a journal, skipping a line cut short by a kill."""
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


class Journal:
    """What earlier runs did in ``out``, checked against this run's ``settings`` (a dict of plain
    values written as the journal's first line; a folder made with other settings raises
    :class:`PrepareError`). Opening it cleans the folder: temporary files and PNGs of ours that
    no record lists are removed, records of PNGs that were deleted are dropped, and the journal
    and ``dataset.json`` are rewritten to match."""

    def __init__(self, *, out: Path, settings: dict):
        self.out, self.settings = Path(out), dict(settings)
        self.out.mkdir(parents=True, exist_ok=True)
        for temp in self.out.glob(".*.tmp"):  # what killed atomic writes left
            temp.unlink(missing_ok=True)
        path = self.out / JOURNAL
        lines = _read_lines(path) if path.exists() else []
        if lines and "settings" in lines[0]:
            self._check(lines[0]["settings"])
        foreign = sorted(p.name for p in self.out.glob("*.png") if not OUTPUT_PATTERN.match(p.name))
        if foreign:
            raise PrepareError(f"{self.out} holds PNGs this command did not make ({', '.join(foreign[:3])}"
                               f"{', ...' if len(foreign) > 3 else ''}), which its dataset.json would not list; "
                               "move them away or choose another --out")
        self.records: dict[str, dict] = {}
        for record in lines:
            if "source" in record:
                self.records[record["source"]] = record
        self.records = {rel: r for rel, r in self.records.items()
                        if r.get("status") != "written" or (self.out / r["file"]).is_file()}
        listed = {r["file"] for r in self.records.values() if r.get("status") == "written"}
        self.removed = sorted(p.name for p in self.out.glob("*.png")
                              if p.name not in listed and OUTPUT_PATTERN.match(p.name))
        for name in self.removed:
            (self.out / name).unlink()
        body = [{"settings": self.settings}, *self.records.values()]
        atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in body).encode())
        self._handle = open(path, "a", encoding="utf-8")
        self.write_dataset()

    def _check(self, earlier: dict) -> None:
        changed = {k: (earlier.get(k), v) for k, v in self.settings.items() if earlier.get(k) != v}
        if changed:
            what = "; ".join(f"{k}: {old!r} then, {new!r} now" for k, (old, new) in changed.items())
            raise PrepareError(f"{self.out} was prepared with other settings ({what}); run the same command "
                               "again to continue it, or choose another --out (or delete the folder to start over)")

    def done(self, source: Source) -> dict | None:
        """The record of ``source`` if an earlier run prepared or refused it as it is now (same
        size and modification time; a PNG it wrote is still there), else None."""
        record = self.records.get(source.rel)
        if record is None or (record.get("size"), record.get("mtime_ns")) != (source.size, source.mtime_ns):
            return None
        return record

    def add(self, record: dict) -> None:
        """Append ``record`` (keyed by its ``source``) and sync it; a refused file replaces (and
        removes) the PNG an earlier version of it had."""
        old = self.records.get(record["source"])
        if old and old.get("status") == "written" and record.get("status") != "written":
            (self.out / old["file"]).unlink(missing_ok=True)
        self.records[record["source"]] = record
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def written(self) -> list[dict]:
        """Records of the PNGs in the folder, in the (natural) order of their source files."""
        return sorted((r for r in self.records.values() if r.get("status") == "written"),
                      key=lambda r: natural_key(r["source"]))

    def write_dataset(self) -> int:
        """Rewrite ``dataset.json`` atomically with every PNG in the folder; returns their number."""
        entries = [[r["file"], r["label"]] for r in self.written() if (self.out / r["file"]).is_file()]
        atomic_write_bytes(self.out / DATASET, json.dumps({"labels": entries}).encode())
        return len(entries)

    def close(self) -> None:
        self._handle.close()
