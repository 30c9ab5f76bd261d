"""3DAvatarGAN's regularisers of G_t (Sec. 3.2), losses of the fakes of each G step.

**Texture regularisation R(Delta s).** G_t is fine-tuned whole, but the style codes s_l(w) =
A_l w (the affine layers that modulate each convolution: StyleGAN's S space) of the texture
layers must stay near G_s's for the same w, so S-space edits of G_s still work on G_t:

    R(Delta s) = E_w sum_{l in texture} || A_l^t w - A_l^s w ||_2^2,   weight 0.001 (the paper's).

The texture layers here: the super-resolution's modulated layers and the backbone's finest block
(the planes' own resolution); the coarser backbone blocks shape the geometry and are left free.

**Depth regularisation R(D).** The seed's equation is cut ("D_t is the depth map of the image I_t
sampled from G_t and J is the matrix of ones having the same spatial dimensions as D_t"); its
purpose is stated: avoid degenerate flat solutions. Our reading: a flat head is a depth map close
to a multiple of J, so R(D) rewards each depth map's mean distance from its own mean plane,

    R(D) = - (1 / |J|) || D_t - mu(D_t) J ||_1,   mu(D_t) the map's mean depth,   weight 0.005,

(a loss: lower is less flat), in the world's length units.

    reg = Regularisers(source=G_s, target=G_t, texture=0.001, depth=0.005)
    loss = reg(fake, ws)   # fake: the G step's render dict, ws (N, num_ws, w_dim)
"""
from __future__ import annotations

import torch
from torch import nn

from portraitlib.nets.triplane import TriPlaneGenerator


def texture_layers(generator: TriPlaneGenerator) -> dict[str, nn.Module]:
    """The affine layers (name -> module) of G's texture layers: the super-resolution's and the
    backbone block at the planes' resolution."""
    finest = f"backbone.synthesis.b{generator.config.plane_resolution}."
    return {name: m for name, m in generator.named_modules()
            if name.endswith("affine") and (name.startswith("superresolution.") or name.startswith(finest))}


def depth_flatness(depth: torch.Tensor) -> torch.Tensor:
    """R(D) of depth maps (N, 1, r, r): minus the mean absolute distance from each map's mean
    (N,); 0 for a flat map."""
    flat = depth.flatten(1)
    return -(flat - flat.mean(1, keepdim=True)).abs().mean(1)


class Regularisers:
    """weight_texture R(Delta s) + weight_depth R(D) of a G step's fakes; a weight of 0 leaves that
    term out. ``source`` is G_s (frozen), ``target`` G_t (being trained)."""

    def __init__(self, *, source: TriPlaneGenerator, target: TriPlaneGenerator, texture: float, depth: float):
        if texture < 0 or depth < 0:
            raise ValueError(f"regulariser weights are never negative, got texture {texture}, depth {depth}")
        self.texture, self.depth = texture, depth
        frozen = texture_layers(source)
        trained = texture_layers(target)
        if frozen.keys() != trained.keys():
            raise ValueError("G_s and G_t have different texture layers: not the same architecture")
        self.pairs = [(frozen[name], trained[name]) for name in trained]

    def style_change(self, ws: torch.Tensor) -> torch.Tensor:
        """R(Delta s) (N,) of codes ws (N, num_ws, w_dim): the last code drives every texture
        layer (the super-resolution reads it; a mapped w is the same in every slot)."""
        w = ws[:, -1]
        with torch.no_grad():
            kept = [before(w) for before, _ in self.pairs]
        return sum((after(w) - s).square().sum(1) for s, (_, after) in zip(kept, self.pairs))

    def __call__(self, fake: dict, ws: torch.Tensor) -> torch.Tensor:
        loss = ws.new_zeros(())
        if self.texture:
            loss = loss + self.texture * self.style_change(ws).mean()
        if self.depth:
            loss = loss + self.depth * depth_flatness(fake["image_depth"]).mean()
        return loss
