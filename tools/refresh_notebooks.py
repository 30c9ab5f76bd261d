"""Re-execute the committed notebooks in place at their default (smoke) parameters, so the
outputs nbval compares against are current. Run after changing a notebook or the library:

    .venv/bin/python tools/refresh_notebooks.py [notebooks/00_world.ipynb ...]
"""
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

root = Path(__file__).resolve().parent.parent
paths = [Path(p) for p in sys.argv[1:]] or sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
for path in paths:
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(notebook, path)
    print(f"refreshed {path}")
