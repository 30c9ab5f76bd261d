"""2D AgileGAN turned by a latent pose direction: the multi-view baseline of Figs. 8 and 9.

A 2D generator has no camera. To show a stylized portrait from another side, AgileGAN-style
methods move the photo's code along a direction in W+ that changes the head's yaw (InterFaceGAN's
recipe): here a ridge regression of the photos' true yaw on their codes (notebook 01's
hierarchical VAE encoder into S; S_t shares S's W+ space), with the step length calibrated on S's
images by the pose regressor, so a requested turn of 30 degrees looks like one to it.

    ws = codes(priors.encoder, priors.source, photos)
    direction = calibrate(fit_pose_direction(ws, yaws), priors.source, ws[:64], regressor)
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
    """A yaw direction in W (the same for every layer of W+) and how many degrees a unit step turns."""

    direction: torch.Tensor
    """(w_dim,) unit vector."""
    degrees_per_unit: float
    """Yaw change per unit step along ``direction``."""
    r2: float
    """Share of the training yaws' variance the linear read-out explains."""

    def shift(self, degrees: torch.Tensor) -> torch.Tensor:
        """Code offsets (N, 1, w_dim) (broadcast over W+ layers) that turn the head by ``degrees`` (N,)."""
        return degrees.reshape(-1, 1, 1) / self.degrees_per_unit * self.direction


@torch.no_grad()
def codes(encoder: nn.Module, source: StyleGAN2Generator, photos: torch.Tensor, *, batch: int = 128) -> torch.Tensor:
    """W+ codes (N, num_ws, w_dim) of photos (N, 3, R, R) in [0, 1] (posterior means)."""
    return torch.cat([encode(encoder, source, photos[i:i + batch]) for i in range(0, len(photos), batch)])


@torch.no_grad()
def fit_pose_direction(ws: torch.Tensor, yaws: torch.Tensor, *, ridge: float = 1.0) -> PoseDirection:
    """Ridge-regress ``yaws`` (N,) (degrees) on the layer-mean of W+ codes ``ws`` (N, num_ws, w_dim);
    the direction is the unit coefficient vector, its scale the read-out's (see :func:`calibrate`)."""
    if len(ws) != len(yaws) or len(ws) < 2:
        raise ValueError(f"need one yaw per code (at least 2), got {len(ws)} codes and {len(yaws)} yaws")
    x = ws.mean(1).double()
    y = yaws.double()
    xc, yc = x - x.mean(0), y - y.mean()
    coef = torch.linalg.solve(xc.T @ xc + ridge * torch.eye(x.shape[1], dtype=x.dtype, device=x.device), xc.T @ yc)
    r2 = 1 - (yc - xc @ coef).square().sum() / yc.square().sum().clamp_min(1e-12)
    norm = coef.norm()
    return PoseDirection(direction=(coef / norm).float(), degrees_per_unit=norm.item(), r2=r2.item())


@torch.no_grad()
def calibrate(direction: PoseDirection, generator: StyleGAN2Generator, ws: torch.Tensor, regressor: nn.Module, *,
              degrees: float = 30.0) -> PoseDirection:
    """The direction with its step measured on images: codes ``ws`` (N, num_ws, w_dim) moved by
    the read-out's +-``degrees``, rendered by ``generator``, their yaw read by ``regressor``
    (images -> (yaw, pitch)); degrees per unit = measured yaw change / step length."""
    regressor.eval()
    step = degrees / direction.degrees_per_unit
    measured = []
    for sign in (-1.0, 1.0):
        images = ((generator.synthesis(ws + sign * step * direction.direction) + 1) / 2).clamp(0, 1)
        measured.append(regressor(images)[:, 0])
    change = (measured[1] - measured[0]).mean().item() / (2 * step)
    if change <= 0:
        raise ValueError(f"moving along the direction does not turn the heads (measured {change:.3g} deg per unit)")
    return PoseDirection(direction=direction.direction, degrees_per_unit=change, r2=direction.r2)


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
