"""Which look an image is in - the real photo look or one of the styles: a small classifier trained
on the world's renders of every look, for the "does it work" measures (``quality``).

Generated images are blurrier, noisier and off in colour compared with the world's crisp renders,
so every training batch is degraded at random (Gaussian blur, pixel noise, brightness, contrast and
saturation jitter) and the classifier learns the look, not the rendering's sharpness. Its held-out
accuracy on new identities at FFHQ-like poses is part of its artefact.

    classifier, info = look.study_look_classifier(cache=ctx.cache, config=cfg, seed=ctx.seed)
    accuracy = look.look_accuracy(images, "cartoon", classifier)    # fraction classified as cartoon
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from portraitlib.training.supervised import fit
from portraitlib.provenance import module_version


class LookClassifier(nn.Module):
    """Images (N, 3, R, R) in [0, 1] -> logits (N, len(looks)); inputs resized to 64 px."""

    def __init__(self, *, looks: tuple[str, ...], width: int = 32):
        super().__init__()
        self.looks = tuple(looks)
        chans = (3, width, 2 * width, 3 * width, 4 * width)
        layers = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.SiLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(chans[-1], len(looks)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
        return self.head(self.features(x * 2 - 1))

    @torch.no_grad()
    def predict(self, images: torch.Tensor, *, batch: int = 256) -> torch.Tensor:
        """(N,) index into ``looks`` of each image's most likely look."""
        self.eval()
        return torch.cat([self(images[i:i + batch]).argmax(1) for i in range(0, len(images), batch)])


def degrade(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Images (N, 3, R, R) in [0, 1], each blurred (sigma 0-1.5 px), noised (std 0-0.05) and
    jittered in brightness, contrast and saturation (+-15%), drawn from ``generator``."""
    n, d = len(images), images.device
    u = torch.rand(n, 6, generator=generator, device=d)
    sigma = u[:, 0] * 1.5
    k = torch.arange(-3, 4, device=d, dtype=images.dtype)
    taps = torch.exp(-k[None] ** 2 / (2 * sigma[:, None].clamp_min(1e-3) ** 2))
    taps = taps / taps.sum(1, keepdim=True)  # (N, 7): one separable kernel per image
    x = images.transpose(0, 1)  # (3, N, R, R): per-image kernels as grouped convolution
    x = F.conv2d(F.pad(x, (3, 3, 0, 0), mode="replicate"), taps[:, None, None, :], groups=n)
    x = F.conv2d(F.pad(x, (0, 0, 3, 3), mode="replicate"), taps[:, None, :, None], groups=n).transpose(0, 1)
    x = x + torch.randn(x.shape, generator=generator, device=d) * (u[:, 1] * 0.05)[:, None, None, None]
    grey = x.mean(1, keepdim=True)
    x = grey + (x - grey) * (0.85 + 0.3 * u[:, 2])[:, None, None, None]
    mean = x.mean((1, 2, 3), keepdim=True)
    x = mean + (x - mean) * (0.85 + 0.3 * u[:, 3])[:, None, None, None]
    return (x * (0.85 + 0.3 * u[:, 4])[:, None, None, None]).clamp(0, 1)


def train_look_classifier(images: torch.Tensor, look_index: torch.Tensor, looks: tuple[str, ...], *, epochs: int,
                          seed: int, batch: int = 64, lr: float = 2e-3, device: torch.device | str = "cpu"
                          ) -> tuple[LookClassifier, list[float]]:
    """Fit a classifier to images (N, 3, R, R) with look indices (N,) into ``looks``, every batch
    degraded and mirrored at random. Returns the model and the mean loss of each epoch."""
    images, look_index = images.to(device), look_index.to(device)

    def loss_of_batch(model, idx, g):
        x = degrade(images[idx], g)
        flip = torch.rand(len(idx), generator=g, device=g.device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return F.cross_entropy(model(x), look_index[idx])

    return fit(lambda: LookClassifier(looks=looks), loss_of_batch, n=len(images), epochs=epochs, seed=seed,
               batch=batch, lr=lr, device=device, desc="look classifier")


def confusion(classifier: LookClassifier, images: torch.Tensor, look_index: torch.Tensor) -> torch.Tensor:
    """(L, L) counts: row = true look, column = predicted look."""
    predicted = classifier.predict(images).cpu()
    size = len(classifier.looks)
    return torch.bincount(look_index.cpu() * size + predicted, minlength=size * size).reshape(size, size)


def look_accuracy(images: torch.Tensor, look: str, classifier: LookClassifier) -> float:
    """Fraction of images (N, 3, R, R) that the classifier calls ``look``."""
    if look not in classifier.looks:
        raise ValueError(f"unknown look {look!r}; the classifier knows {list(classifier.looks)}")
    return (classifier.predict(images) == classifier.looks.index(look)).float().mean().item()


def study_look_classifier(*, cache, config, seed: int, device: torch.device | str = "cpu",
                          extra_looks: tuple[str, ...] = ()) -> tuple[LookClassifier, dict]:
    """The study's look classifier (trained on the pose regressor's renders of the real look,
    every style of ``config`` and ``extra_looks``, e.g. a held-out style MMFS is tested on), cached;
    returns it and ``curve``, ``looks``, the held-out ``confusion`` (new identities, FFHQ-like
    poses) and ``held_out_accuracy`` per look."""
    from portraitlib.world.datasets import cached_pose_set

    looks = ("real", *config.styles, *extra_looks)

    def look_index(n_per_look: int) -> torch.Tensor:
        return torch.arange(len(looks), device="cpu").repeat_interleave(n_per_look)

    def build():
        n = config.pose_set_per_look
        data = cached_pose_set(cache=cache, n_per_look=n, looks=looks, split="train", seed=seed, config=config,
                               device=device)
        model, curve = train_look_classifier(data.images, look_index(n), looks, epochs=config.look_epochs,
                                             seed=seed, device=device)
        n_test = max(n // 4, 16)
        test = cached_pose_set(cache=cache, n_per_look=n_test, looks=looks, split="test", seed=seed, config=config,
                               device=device)
        table = confusion(model, test.images.to(device), look_index(n_test))
        return {"state_dict": model.state_dict(), "curve": torch.tensor(curve, device="cpu"), "confusion": table}

    key = {"world": dataclasses.asdict(config), "code": module_version(__name__)}
    stored = cache.get_or_build("look-classifier", key | ({"extra_looks": list(extra_looks)} if extra_looks else {}),
                                build)
    with torch.device("cpu"):
        model = LookClassifier(looks=looks)
    model.load_state_dict(stored["state_dict"])
    table = stored["confusion"]
    accuracy = {look: (table[i, i] / table[i].sum()).item() for i, look in enumerate(looks)}
    return model.to(device).eval(), {"looks": list(looks), "curve": stored["curve"].tolist(),
                                     "confusion": table.tolist(), "held_out_accuracy": accuracy}
