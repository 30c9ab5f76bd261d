"""Data-parallel training: 2 CPU processes (gloo) against 1 process with their combined batch."""
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from portraitlib import distributed
from portraitlib.cache import atomic_write_bytes
from portraitlib import cameras
from portraitlib.nets import configs
from portraitlib.nets.encoders import WPlusEncoder, mean_w
from portraitlib.nets.stylegan2 import StyleGAN2Generator
from portraitlib.nets.triplane import TriPlaneGenerator
from portraitlib.profiles import EncoderConfig
from portraitlib.training.encoder3d import mean_w_3d, train_wplus_3d
from portraitlib.training.gan2d import GAN2DConfig, TrainSettings, build_2d, train_2d
from portraitlib.training.inversion import InversionSettings, train_encoder

BATCH = 4
"""The global batch: 2 processes take 2 photos each."""


def _photos(size: int = 16) -> torch.Tensor:
    return torch.rand(12, 3, size, size, generator=torch.Generator().manual_seed(5))


def _encoder_and_generator() -> tuple[WPlusEncoder, StyleGAN2Generator]:
    """The untrained W+ encoder and its frozen generator (the same weights on every call)."""
    torch.manual_seed(0)
    g = StyleGAN2Generator(z_dim=8, w_dim=8, img_resolution=32, channel_base=64, channel_max=8, mapping_layers=1).eval()
    return WPlusEncoder(img_resolution=32, num_ws=g.num_ws, w_dim=8, w_avg=mean_w(g), width=8, hidden=16), g


def _train_encoder(checkpoint: Path | None = None) -> dict:
    enc, g = _encoder_and_generator()
    enc, log = train_encoder(enc, g, _photos(32), settings=InversionSettings(steps=4, batch=BATCH), seed=0,
                             checkpoint=checkpoint)
    return {"state": enc.state_dict(), "loss": log["loss"]}


def _train_encoder_3d() -> dict:
    """AgileGAN3D's W+ encoder with its cycle loss (prior samples rendered at 2 cameras each)."""
    torch.manual_seed(3)
    g = TriPlaneGenerator(config=configs.SMOKE).eval()
    enc = WPlusEncoder(img_resolution=32, num_ws=g.num_ws_plus, w_dim=configs.SMOKE.w_dim, w_avg=mean_w_3d(g, n=64),
                       width=8, hidden=16)
    labels = cameras.labels_from_angles(torch.linspace(-20, 20, 12), torch.zeros(12))
    enc, log = train_wplus_3d(enc, g, _photos(32), labels, settings=EncoderConfig(steps=2, batch=BATCH), seed=0)
    return {"state": enc.state_dict(), "loss": log["loss"], "cycle": log["cycle"]}


def _train_gan() -> dict:
    torch.manual_seed(0)
    g, d = build_2d(GAN2DConfig(resolution=16, z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=8))
    g_ema, _ = train_2d(g, d, _photos(), settings=TrainSettings(steps=3, batch=BATCH, r1_every=2), seed=0)
    return {"G": dict(g.named_parameters()), "D": dict(d.named_parameters()), "G_ema": dict(g_ema.named_parameters())}


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        out = Path(out)
        assert distributed.world_size() == world and distributed.rank() == rank
        atomic_write_bytes(out / "written.txt", str(rank).encode())  # only rank 0 writes
        result = {"encoder": _train_encoder(checkpoint=out / "encoder-resume.pt"), "gan": _train_gan(),
                  "encoder3d": _train_encoder_3d()}
        torch.save(result, out / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_processes_equal_one_process_with_their_combined_batch(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert (tmp_path / "written.txt").read_text() == "0", "only rank 0 writes files"
    assert (tmp_path / "encoder-resume.pt").exists(), "rank 0 wrote the resumable checkpoint"
    single = _train_encoder()
    # Each rank logs its own half's loss; their mean is the single process's loss at every step,
    # so the updates between the steps were the same.
    halves = torch.tensor([r["encoder"]["loss"] for r in ranks]).mean(0)
    assert torch.allclose(halves, torch.tensor(single["loss"]), atol=1e-6), (halves, single["loss"])
    untrained = _encoder_and_generator()[0].state_dict()
    for name, value in single["state"].items():
        assert torch.equal(ranks[0]["encoder"]["state"][name], ranks[1]["encoder"]["state"][name]), name
        # Adam turns the rounding of gradients that are zero in exact arithmetic (a conv bias right
        # before GroupNorm) into steps of ~lr/10: weights agree to 5e-4, not to float precision.
        assert torch.allclose(ranks[0]["encoder"]["state"][name], value, atol=5e-4), name
    moved = max((v - untrained[k]).abs().max().item() for k, v in single["state"].items())
    assert moved > 6 * 5e-4, f"4 Adam steps of lr 1e-3 moved the weights by {moved} only"
    # The 3D W+ encoder: each rank renders its own prior samples at 2 cameras for the cycle loss. The
    # renderer's stratified ray jitter is drawn per rank, so the losses agree loosely, the weights exactly.
    single3d = _train_encoder_3d()
    halves3d = torch.tensor([r["encoder3d"]["loss"] for r in ranks]).mean(0)
    assert torch.allclose(halves3d, torch.tensor(single3d["loss"]), rtol=0.05), (halves3d, single3d["loss"])
    assert min(min(r["encoder3d"]["cycle"]) for r in ranks) > 0, "the cycle term ran on every rank"
    for name, value in ranks[0]["encoder3d"]["state"].items():
        assert torch.equal(value, ranks[1]["encoder3d"]["state"][name]), name
    # The GAN loop: both ranks hold the same weights after every averaged update.
    for net in ("G", "D", "G_ema"):
        for name, value in ranks[0]["gan"][net].items():
            assert torch.equal(value, ranks[1]["gan"][net][name]), f"{net}.{name} differs between ranks"


def test_one_process_is_world_size_one(monkeypatch):
    x = torch.arange(6)
    assert distributed.world_size() == 1 and distributed.is_writer() and torch.equal(distributed.shard(x), x)
    monkeypatch.setenv("RANK", "3")  # a stray RANK without torchrun's WORLD_SIZE must not stop the writes
    assert distributed.is_writer()
    monkeypatch.setenv("WORLD_SIZE", "4")  # the runner under torchrun: rank 3 writes nothing
    assert not distributed.is_writer()
