"""2D AgileGAN turned by a latent pose direction: the multi-view baseline of Figs. 8 and 9.

A 2D generator has no camera. To show a stylized portrait from another side, AgileGAN-style
methods move the photo's code along a direction in W+ that changes the head's yaw (InterFaceGAN's
recipe): here a ridge regression of the photos' true yaw on their codes (notebook 01's
hierarchical VAE encoder into S; S_t shares S's W+ space).

    direction = fit_pose_direction(codes(priors.encoder, priors.source, photos), yaws)
    views = turn(direction, priors.encoder, priors.source, priors.styled["anime"], photos,
                 from_yaw=photo_yaws, to_yaws=[-30, 0, 30])      # (N, K, 3, R, R)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from portraitlib.nets.stylegan2 import StyleGAN2Generator
from portraitlib.training.inversion import encode


@dataclass
class PoseDirection:
    """A linear yaw read-out of W+ codes: yaw ~ <coef, w> + bias."""

    coef: torch.Tensor
    """(num_ws, w_dim) regression coefficients, degrees per unit of w."""
    bias: float
    """Degrees."""
    r2: float
    """Share of the training yaws' variance the read-out explains."""

    def read(self, ws: torch.Tensor) -> torch.Tensor:
        """The read-out's yaw (N,) of codes (N, num_ws, w_dim), degrees."""
        return (ws * self.coef).flatten(1).sum(1) + self.bias

    def shift(self, degrees: torch.Tensor) -> torch.Tensor:
        """The smallest code offsets (N, num_ws, w_dim) that move the read-out by ``degrees`` (N,)."""
        return degrees.reshape(-1, 1, 1) * self.coef / self.coef.square().sum()


@torch.no_grad()
def codes(encoder: nn.Module, source: StyleGAN2Generator, photos: torch.Tensor, *, batch: int = 128) -> torch.Tensor:
    """W+ codes (N, num_ws, w_dim) of photos (N, 3, R, R) in [0, 1] (posterior means)."""
    return torch.cat([encode(encoder, source, photos[i:i + batch]) for i in range(0, len(photos), batch)])


@torch.no_grad()
def fit_pose_direction(ws: torch.Tensor, yaws: torch.Tensor, *, ridge: float = 1.0) -> PoseDirection:
    """Ridge-regress ``yaws`` (N,) (degrees) on W+ codes ``ws`` (N, num_ws, w_dim)."""
    if len(ws) != len(yaws) or len(ws) < 2:
        raise ValueError(f"need one yaw per code (at least 2), got {len(ws)} codes and {len(yaws)} yaws")
    x = ws.flatten(1).double()
    y = yaws.double()
    x_mean, y_mean = x.mean(0), y.mean()
    xc, yc = x - x_mean, y - y_mean
    # Dual form: N is smaller than the code size.
    alpha = torch.linalg.solve(xc @ xc.T + ridge * torch.eye(len(xc), dtype=x.dtype), yc)
    coef = xc.T @ alpha
    fitted = xc @ coef
    r2 = 1 - (yc - fitted).square().sum() / yc.square().sum().clamp_min(1e-12)
    bias = (y_mean - x_mean @ coef).item()
    return PoseDirection(coef=coef.float().reshape(ws.shape[1:]), bias=bias, r2=r2.item())


@torch.no_grad()
def turn(direction: PoseDirection, encoder: nn.Module, source: StyleGAN2Generator, styled: StyleGAN2Generator,
         photos: torch.Tensor, *, from_yaw: torch.Tensor, to_yaws: list[float]) -> torch.Tensor:
    """Stylized photos (N, 3, R, R) "turned" from their yaws ``from_yaw`` (N,) to each of ``to_yaws``
    (K values, degrees): S_t(E(x) + shift(to - from)), (N, K, 3, R, R) in [0, 1]."""
    base = codes(encoder, source, photos)
    views = []
    for target in to_yaws:
        ws = base + direction.shift(target - from_yaw.float())
        views.append(((styled.synthesis(ws) + 1) / 2).clamp(0, 1))
    return torch.stack(views, 1)
