"""A 3D GAN run with early stopping, killed with SIGKILL (no clean-up, no exception handler) right
after a checkpoint, then resumed in a new process, returns exactly what an uninterrupted run does:
the best-scoring weights, the same best step and the same curves. A killed atomic write leaves
no temporary file behind once the next write has run."""
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from portraitlib.cache import atomic_torch_save, atomic_write_bytes, safe_torch_load

SCRIPT = textwrap.dedent('''
    import os, signal, sys
    import torch
    from portraitlib import cameras
    from portraitlib.cache import atomic_torch_save
    from portraitlib.nets import configs
    from portraitlib.nets.discriminators import DiscriminatorConfig
    from portraitlib.nets.triplane import TriPlaneGenerator
    from portraitlib.training.eg3d import Train3DSettings, train_3d

    checkpoint, out, kill_after = sys.argv[1], sys.argv[2], int(sys.argv[3])
    g = torch.Generator().manual_seed(0)
    images = torch.rand(6, 3, 32, 32, generator=g)
    labels = cameras.labels_from_angles(torch.linspace(-30, 30, 6), torch.zeros(6))
    torch.manual_seed(7)
    G = TriPlaneGenerator(config=configs.SMOKE)
    D = DiscriminatorConfig(img_resolution=32, channel_base=256, channel_max=16).build()
    calls = []

    def evaluate(g_ema):
        # a score of the weights alone (so both processes agree), lowest somewhere mid-run
        calls.append(1)
        if len(calls) == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        w = torch.cat([p.flatten() for p in g_ema.decoder.parameters()])
        return abs(float((w.mean() * 1e4).sin()) - 0.03)

    settings = Train3DSettings(steps=6, batch=2, r1_every=2, density_every=2, blur_fade_images=8,
                               eval_every=1, checkpoint_every=1)
    g_ema, log = train_3d(G, D, images, labels, settings=settings, seed=0, evaluate=evaluate,
                          checkpoint=checkpoint)
    atomic_torch_save({"state": g_ema.state_dict(), "best_step": log["best_step"], "eval": log["eval"]}, out)
''')


def _run(tmp_path: Path, name: str, checkpoint: Path, kill_after: int = 0) -> subprocess.CompletedProcess:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, str(script), str(checkpoint), str(tmp_path / name), str(kill_after)],
                          env=env, capture_output=True, text=True, timeout=300)


def test_killed_3d_training_resumes_to_the_uninterrupted_result(tmp_path):
    straight = _run(tmp_path, "straight.pt", tmp_path / "straight.ckpt")
    assert straight.returncode == 0, straight.stderr
    # scored at the start and after each step, before that step's checkpoint: the 4th call (after
    # step 3) dies, so the run resumes from step 2's checkpoint
    killed = _run(tmp_path, "resumed.pt", tmp_path / "resumed.ckpt", kill_after=4)
    assert killed.returncode == -signal.SIGKILL
    assert (tmp_path / "resumed.ckpt").exists() and not (tmp_path / "resumed.pt").exists()
    resumed = _run(tmp_path, "resumed.pt", tmp_path / "resumed.ckpt")
    assert resumed.returncode == 0, resumed.stderr
    a, b = safe_torch_load(tmp_path / "straight.pt"), safe_torch_load(tmp_path / "resumed.pt")
    assert a["eval"] == b["eval"] and a["best_step"] == b["best_step"]
    assert 0 < a["best_step"] <= 2, f"the test needs a best step before the kill, got {a['eval']}"
    for k, v in a["state"].items():
        assert torch.equal(v, b["state"][k]), f"{k} differs after the resume"


def test_the_next_write_removes_temporary_files_of_a_killed_write(tmp_path):
    target = tmp_path / "artefact.pt"
    orphan = tmp_path / ".artefact.pt.abc123.tmp"
    orphan.write_bytes(b"half a file")  # what a write killed before its rename leaves
    other = tmp_path / ".other.pt.abc123.tmp"
    other.write_bytes(b"another file's temp")
    atomic_torch_save({"x": torch.ones(2)}, target)
    assert not orphan.exists() and other.exists(), "only the orphans of this file are removed"
    atomic_write_bytes(tmp_path / "other.pt", json.dumps({}).encode())
    assert not other.exists()
    assert torch.equal(safe_torch_load(target)["x"], torch.ones(2))
