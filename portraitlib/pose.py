"""Head pose from images that may be stylized: a small CNN regressor trained on the world.

Landmark detectors are built for photos; on cartoons, comics or statues they often fail. The
world gives images of every look with exact cameras, so a regressor learns yaw and pitch from
them. Its error is measured against the world's truth; the style-prior ablation compares labels
it estimates from stylized images with labels taken from the paired real photos.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from portraitlib import cameras
from portraitlib.training.supervised import fit
from portraitlib.provenance import module_version

_SCALE = (45.0, 20.0)  # yaw and pitch are regressed in these units


class PoseRegressor(nn.Module):
    """Images (N, 3, R, R) in [0, 1] -> (yaw, pitch) in degrees (N, 2); inputs resized to 64 px."""

    def __init__(self, *, width: int = 32):
        super().__init__()
        chans = (3, width, 2 * width, 3 * width, 4 * width)
        layers = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.SiLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(chans[-1] * 16, 128), nn.SiLU(), nn.Linear(128, 2))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
        return self.head(self.features(x * 2 - 1)) * images.new_tensor(_SCALE)

    @torch.no_grad()
    def labels(self, images: torch.Tensor, *, batch: int = 256) -> torch.Tensor:
        """EG3D labels (N, 25) of orbit cameras at the estimated yaw and pitch."""
        self.eval()
        angles = torch.cat([self(images[i:i + batch]) for i in range(0, len(images), batch)])
        return cameras.labels_from_angles(angles[:, 0], angles[:, 1])


def train_pose_regressor(images: torch.Tensor, angles: torch.Tensor, *, epochs: int, seed: int,
                         batch: int = 64, lr: float = 2e-3, device: torch.device | str = "cpu"
                         ) -> tuple[PoseRegressor, list[float]]:
    """Fit a regressor to images (N, 3, R, R) with true angles (N, 3) in degrees, on ``device``.

    Each batch is mirrored at random (yaw negated), a free doubling of the data. Returns the
    model and the mean loss of each epoch.
    """
    images = images.to(device)
    target = angles[:, :2].to(device) / images.new_tensor(_SCALE)

    def loss_of_batch(model, idx, g):
        x, y = images[idx], target[idx].clone()
        flip = torch.rand(len(idx), generator=g, device=g.device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        y[:, 0] = torch.where(flip, -y[:, 0], y[:, 0])
        return F.smooth_l1_loss(model(x) / x.new_tensor(_SCALE), y, beta=0.05)

    return fit(PoseRegressor, loss_of_batch, n=len(images), epochs=epochs, seed=seed, batch=batch, lr=lr,
               device=device, desc="pose regressor")


def study_regressor(*, cache, config, seed: int, device: torch.device | str = "cpu"
                    ) -> tuple[PoseRegressor, list[float]]:
    """The study's pose regressor (trained on world renders of the real look and every style of
    ``config``, a ``WorldConfig``), built on first use and cached; on ``device``. Returns it and its
    loss curve."""
    from portraitlib.world.datasets import cached_pose_set

    looks = ("real", *config.styles)

    def build():
        data = cached_pose_set(cache=cache, n_per_look=config.pose_set_per_look, looks=looks, split="train",
                               seed=seed, config=config, device=device)
        model, curve = train_pose_regressor(data.images, data.angles, epochs=config.pose_epochs, seed=seed,
                                            device=device)
        return {"state_dict": model.state_dict(), "curve": torch.tensor(curve, device="cpu")}

    world = dataclasses.asdict(config)
    stored = cache.get_or_build("pose-regressor", {"world": world, "code": module_version(__name__)}, build)
    with torch.device("cpu"):
        model = PoseRegressor()
    model.load_state_dict(stored["state_dict"])
    return model.to(device).eval(), stored["curve"].tolist()
