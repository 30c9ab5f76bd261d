"""Run the study's notebooks in order with papermill.

    python -m portraitlib.run --profile mini            # the whole study
    python -m portraitlib.run --profile smoke --only 03  # one notebook
    python -m portraitlib.run --profile mini --from 04   # from a notebook on
    python -m portraitlib.run --profile mini --force     # rerun what is up to date
    python -m portraitlib.run --profile mini --device auto  # on the first GPU torch finds
    python -m portraitlib.run --profile paper --check    # what the profile needs on disk (exit 2: missing)

Executed notebooks go to ``reports/<profile>/notebooks/``, and ``report.md`` is written anew
after a run in which a notebook ran and none failed. A notebook is skipped when its
result JSON exists and its run stamp matches the profile, seed and code version (library,
params and the notebook's own cells). The run stops at the first failing notebook.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from portraitlib import inventory, report
from portraitlib.cache import atomic_write_bytes
from portraitlib.distributed import is_writer, rank
from portraitlib.paths import CACHE_ENV, PROFILES_ENV, REPORTS_ENV, notebooks_dir, reports_dir
from portraitlib.profile_loading import load_profile
from portraitlib.profiles import ProfileError
from portraitlib.provenance import code_version


@dataclass(frozen=True)
class Outcome:
    notebook: Path
    status: str  # "ran", "skipped" or "failed"
    seconds: float
    message: str = ""


def discover(folder: Path) -> list[Path]:
    """The study's notebooks: ``NN_name.ipynb`` in ``folder``, in order."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def select(notebooks: list[Path], *, only: str | None, start: str | None) -> list[Path]:
    """Filter by ``--only NN`` or ``--from NN`` (a number prefix or a full stem)."""
    def matches(path: Path, key: str) -> bool:
        return path.stem == key or path.stem.split("_", 1)[0] == key.zfill(2)

    for key in (only, start):
        if key is not None and not any(matches(p, key) for p in notebooks):
            names = ", ".join(p.stem for p in notebooks) or "none"
            raise SystemExit(f"error: no notebook {key!r}; notebooks: {names}")
    if only is not None:
        return [p for p in notebooks if matches(p, only)]
    if start is not None:
        first = next(i for i, p in enumerate(notebooks) if matches(p, start))
        return notebooks[first:]
    return notebooks


def stamp_for(notebook: Path, *, profile: str, seed: int, device: str | None = None) -> dict:
    return {"profile": profile, "seed": seed, "code_version": code_version(notebook),
            **({"device": device} if device else {})}


def is_up_to_date(notebook: Path, stamp: dict, reports: Path) -> bool:
    result = reports / "results" / f"{notebook.stem}.json"
    stamp_file = reports / "results" / f".{notebook.stem}.stamp.json"
    if not (result.exists() and stamp_file.exists()):
        return False
    return json.loads(stamp_file.read_text()) == stamp


def run_notebook(notebook: Path, *, profile: str, seed: int | None, reports: Path, device: str | None = None) -> None:
    """Execute one notebook with papermill; raise on failure."""
    import papermill

    parameters = {"profile": profile}
    if seed is not None:
        parameters["seed"] = seed
    if device is not None:
        parameters["device"] = device
    out = reports / "notebooks" / ("" if is_writer() else f".rank{rank()}") / notebook.name  # rank 0's is the report
    out.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(notebook), str(out), parameters=parameters,
                               cwd=str(notebook.parent), progress_bar=True,
                               kernel_name="python3", log_output=False)
    _relative_paths(out)


def _relative_paths(executed: Path) -> None:
    """Papermill records where it read and wrote the notebook; keep the names, not this machine's paths."""
    import nbformat

    notebook = nbformat.read(executed, as_version=4)
    meta = notebook.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if meta.get(key):
            meta[key] = Path(meta[key]).name
    nbformat.write(notebook, executed)


def run_study(*, profile: str, seed: int | None = None, only: str | None = None,
              start: str | None = None, force: bool = False, folder: Path | None = None,
              device: str | None = None) -> list[Outcome]:
    """Run the selected notebooks in order (on ``device``, default the profile's); stop at the
    first failure."""
    for name in (CACHE_ENV, PROFILES_ENV, REPORTS_ENV):  # the kernels run in notebooks/, not here
        if os.environ.get(name):
            os.environ[name] = str(Path(os.environ[name]).expanduser().resolve())
    loaded = load_profile(profile)
    run_seed = loaded.seed if seed is None else seed
    folder = folder or notebooks_dir()
    notebooks = select(discover(folder), only=only, start=start)
    if not notebooks:
        raise SystemExit(f"error: no notebooks (NN_name.ipynb) found in {folder}")
    reports = reports_dir(profile)
    outcomes: list[Outcome] = []
    bar = tqdm(notebooks, desc=f"study [{profile}]", unit="notebook")
    for notebook in bar:
        bar.set_postfix_str(notebook.stem)
        stamp = stamp_for(notebook, profile=profile, seed=run_seed, device=device)
        if not force and is_up_to_date(notebook, stamp, reports):
            outcomes.append(Outcome(notebook, "skipped", 0.0, "results up to date"))
            tqdm.write(f"skip  {notebook.name}: results up to date (use --force to rerun)")
            continue
        started = time.perf_counter()
        try:
            run_notebook(notebook, profile=profile, seed=seed, reports=reports, device=device)
        except Exception as error:  # papermill raises its own error types; report all alike
            seconds = time.perf_counter() - started
            executed = reports / "notebooks" / notebook.name
            message = _first_line(error)
            outcomes.append(Outcome(notebook, "failed", seconds, message))
            tqdm.write(f"FAILED {notebook} after {seconds:.1f} s: {message}\n"
                       f"       executed copy with the traceback: {executed}")
            break
        seconds = time.perf_counter() - started
        result = reports / "results" / f"{notebook.stem}.json"
        if is_writer() and not result.exists():
            outcomes.append(Outcome(notebook, "failed", seconds, "it recorded no results"))
            tqdm.write(f"FAILED {notebook}: it ran but recorded no {result} (call ctx.record)")
            break
        atomic_write_bytes(reports / "results" / f".{notebook.stem}.stamp.json",
                           json.dumps(stamp, sort_keys=True).encode())
        outcomes.append(Outcome(notebook, "ran", seconds))
        tqdm.write(f"ran   {notebook.name} in {seconds:.1f} s")
    if is_writer() and any(o.status == "ran" for o in outcomes) and not any(o.status == "failed" for o in outcomes):
        tqdm.write(f"report {report.write(profile, folder=reports)}")  # every notebook's results, the last ones too
    return outcomes


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("---")]
    return lines[-1] if lines else type(error).__name__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portraitlib.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="mini", help="smoke, mini or paper (params/*.yaml)")
    parser.add_argument("--seed", type=int, default=None, help="override the profile's seed")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--only", metavar="NN", help="run only this notebook (e.g. 03)")
    group.add_argument("--from", dest="start", metavar="NN", help="run from this notebook on")
    parser.add_argument("--force", action="store_true", help="rerun notebooks that are up to date")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N or mps (default: the profile's)")
    parser.add_argument("--check", action="store_true",
                        help="list the data and weight files the profile reads and where to get them; exit 2 "
                             "when a required one is missing")
    parser.add_argument("--notebooks-dir", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--reports-dir", type=Path, default=None,
                        help=f"write reports here instead of reports/ (sets ${REPORTS_ENV})")
    args = parser.parse_args(argv)
    if args.reports_dir is not None:
        os.environ[REPORTS_ENV] = str(args.reports_dir.resolve())
    if args.check:
        try:
            text, missing = inventory.report(load_profile(args.profile))
        except ProfileError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(text)
        return 2 if missing else 0
    try:
        outcomes = run_study(profile=args.profile, seed=args.seed, only=args.only,
                             start=args.start, force=args.force, folder=args.notebooks_dir, device=args.device)
    except ProfileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failed = [o for o in outcomes if o.status == "failed"]
    ran = sum(o.status == "ran" for o in outcomes)
    skipped = sum(o.status == "skipped" for o in outcomes)
    total = sum(o.seconds for o in outcomes)
    print(f"study [{args.profile}]: {ran} ran, {skipped} skipped, {len(failed)} failed "
          f"in {total:.1f} s; reports in {reports_dir(args.profile)}")
    if failed:
        print(f"error: notebook failed: {failed[0].notebook}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
