"""The GPU check: the smoke study end to end on an accelerator against the CPU, and the paper-config
tri-plane G+D training step in fp32 and under bf16 autocast.

    .venv/bin/python benchmarks/gpu_check.py                  # everything (needs CUDA)
    .venv/bin/python benchmarks/gpu_check.py --skip-study     # only the training-step throughput
    .venv/bin/python benchmarks/gpu_check.py --device cpu --steps 1 --skip-study   # a dry run here

Each study run uses a fresh cache and reports folder under --work, so nothing is reused between
devices. Prints a table of per-notebook seconds (device vs CPU, and their ratio), then images per
second of ``train_3d`` steps at the official ffhq512-128 sizes (batch 4), fp32 (TF32 matmuls) and
bf16 autocast (``Train3DSettings.bf16``, what a profile's ``precision: bf16`` turns on), with the
first-step G loss of each.
"""
import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from portraitlib import cameras
from portraitlib.device import configure_backends, pick_device
from portraitlib.nets import configs
from portraitlib.nets.discriminators import eg3d_paper_config
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.paths import CACHE_ENV, REPORTS_ENV
from portraitlib.training.eg3d import Train3DSettings, train_3d


def study_seconds(device: str, work: Path) -> dict[str, float]:
    """Per-notebook seconds of the smoke study on ``device`` from an empty cache."""
    from portraitlib.run import run_study

    os.environ[CACHE_ENV] = str(work / device / "cache")
    os.environ[REPORTS_ENV] = str(work / device / "reports")
    outcomes = run_study(profile="smoke", force=True, device=device)
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        raise SystemExit(f"smoke study failed on {device} at {failed[0].notebook.name}: {failed[0].message}")
    return {o.notebook.stem: o.seconds for o in outcomes}


def step_throughput(device: torch.device, *, steps: int, bf16: bool) -> tuple[float, float]:
    """(images per second, first-step G loss) of paper-size ``train_3d`` steps at batch 4."""
    torch.manual_seed(0)
    with torch.device("cpu"):
        g, d = TriPlaneGenerator(config=configs.PAPER), eg3d_paper_config().build()
    g, d = g.to(device), d.to(device)
    n = 16
    images = torch.rand(n, 3, 512, 512, generator=torch.Generator(device="cpu").manual_seed(0), device="cpu")
    labels = cameras.labels_from_angles(torch.linspace(-30, 30, n), 0.0)
    # bf16 through the profile switch's path: Train3DSettings.bf16 (the loop's own autocast).
    settings = Train3DSettings(steps=steps, batch=4, density_every=4, r1_every=16, bf16=bf16)
    train_3d(g, d, images, labels, settings=Train3DSettings(steps=1, batch=4, bf16=bf16), seed=0)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    _, log = train_3d(g, d, images, labels, settings=settings, seed=0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * settings.batch / (time.perf_counter() - start), log["g_loss"][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="the accelerator to check (cuda, cuda:N, mps, cpu)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per precision")
    parser.add_argument("--skip-study", action="store_true", help="only the training-step throughput")
    parser.add_argument("--work", type=Path, default=None, help="folder for the study runs (default: a temp dir)")
    args = parser.parse_args()
    device = pick_device(args.device)
    configure_backends(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    print(f"device: {device} ({name}); torch {torch.__version__}")
    if not args.skip_study:
        work = args.work or Path(tempfile.mkdtemp(prefix="portraitlib-gpu-check-"))
        on_device = study_seconds(str(device), work)
        on_cpu = study_seconds("cpu", work)
        print(f"\nsmoke study, seconds per notebook (empty cache):\n{'notebook':<26}{'device':>9}{'cpu':>9}{'cpu/device':>12}")
        for stem in on_device:
            print(f"{stem:<26}{on_device[stem]:9.1f}{on_cpu[stem]:9.1f}{on_cpu[stem] / on_device[stem]:12.2f}")
        total_d, total_c = sum(on_device.values()), sum(on_cpu.values())
        print(f"{'total':<26}{total_d:9.1f}{total_c:9.1f}{total_c / total_d:12.2f}")
    fp32, loss32 = step_throughput(device, steps=args.steps, bf16=False)
    bf16, loss16 = step_throughput(device, steps=args.steps, bf16=True)
    print(f"\npaper-config G+D train_3d step, batch 4, 512 px: fp32/TF32 {fp32:.1f} img/s, bf16 autocast "
          f"{bf16:.1f} img/s ({bf16 / fp32:.2f}x); first-step G loss {loss32:.4f} vs {loss16:.4f}")


if __name__ == "__main__":
    main()
