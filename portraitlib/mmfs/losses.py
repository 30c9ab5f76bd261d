"""MMFS's losses: D's feature distance (Eq. 1, as JoJoGAN), the self-similarity structure loss
(Eqs. 3-4), CLIP's directional loss (Eq. 7) and the token projection loss (Eq. 8).

The paper's S^l reads the keys of DINO-ViT's last layer. No DINO weights exist offline; the world's
stand-in must be a network that was never trained on the world's looks, since S^l must describe a
head's layout the same way in a photo and in a painting: the VGG16 ImageNet trunk of the study's
LPIPS (real weights). The world CLIP would not do: its image tower was trained to tell the looks
apart, so its tokens change with the style Stage II must be free to change.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from portraitlib import metrics
from portraitlib.clip.model import Clip
from portraitlib.nets.discriminators import Discriminator


def discriminator_distance(discriminator: Discriminator, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """sum_l L1(D^l(images), D^l(target)) over D's blocks (Eq. 1's perceptual term), images in
    [-1, 1]; the target's features carry no gradient."""
    with torch.no_grad():
        reference = discriminator.block_features(target)
    return sum(F.l1_loss(a, b) for a, b in zip(discriminator.block_features(images), reference))


class SelfSimilarity(nn.Module):
    """S^l(I) (Eq. 3): the cosine similarity of every pair of tokens, here the positions of one
    ReLU slice of LPIPS-VGG's ImageNet trunk: images (N, 3, R, R) in [0, 1] -> (N, T, T)."""

    def __init__(self, perceptual: metrics.LPIPS, *, layer: int):
        super().__init__()
        if "vgg" not in perceptual.name:  # lpips_vgg, or the smoke profile's labelled random trunk
            raise ValueError(f"the structure loss reads the VGG16 trunk of LPIPS-VGG, not {perceptual.name}")
        trunk = perceptual.net.net
        self.scaling = perceptual.net.scaling_layer
        self.slices = nn.ModuleList(getattr(trunk, f"slice{i}") for i in range(1, layer + 1))
        self.name = f"self-similarity of VGG16 slice {layer} ({perceptual.weights})"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.scaling(images * 2 - 1)
        for block in self.slices:
            x = block(x)
        tokens = F.normalize(x.flatten(2).transpose(1, 2), dim=-1)
        return tokens @ tokens.transpose(1, 2)


def structure_loss(similarity: SelfSimilarity, images: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """L_st (Eq. 4): ||S^l(images) - S^l(sources)||_F, averaged over the batch (both in [0, 1])."""
    with torch.no_grad():
        target = similarity(sources)
    return torch.linalg.matrix_norm(similarity(images) - target).mean()


def direction_loss(clip: Clip, images: torch.Tensor, sources: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """1 - sim(d_CLIP(I_s), d_CLIP(p)) of Eq. (7): the images' (N, 3, R, R) in [0, 1] CLIP embeddings
    minus their sources', against a prompt's direction (D,) from its anchor; mean over the batch."""
    with torch.no_grad():
        anchor = clip.encode_images(sources)
    moved = clip.encode_images(images) - anchor
    return (1 - F.cosine_similarity(moved, direction.expand_as(moved), dim=-1)).mean()


def clip_tokens(clip: Clip, images: torch.Tensor, *, layer: int) -> torch.Tensor:
    """T^l_CLIP (Eq. 8): the tokens (N, T, C) of intermediate ``layer`` of CLIP's image tower
    (open_clip's ``forward_intermediates``; a ResNet's positions, a ViT's patches), images in [0, 1]."""
    out = clip.model.visual.forward_intermediates(clip.preprocess(images), indices=[layer], stop_early=True,
                                                  intermediates_only=True)["image_intermediates"][0]
    return out.flatten(2).transpose(1, 2)


def token_basis(tokens: torch.Tensor) -> torch.Tensor:
    """U (C, k) of Eq. (8): an orthonormal basis, by SVD, of the space spanned by one image's tokens
    (T, C), k = min(T, C). Raises when k = C: U U^T would be the identity and the loss zero."""
    n_tokens, channels = tokens.shape
    if n_tokens >= channels:
        raise ValueError(f"{n_tokens} tokens of {channels} channels span all of R^{channels}: the projection "
                         "loss would be 0; take a layer with fewer positions than channels")
    return torch.linalg.svd(tokens.detach().double(), full_matrices=False)[2].T.to(tokens.dtype)


def projection_loss(tokens: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """||U U^T T - T||_1 of Eq. (8) for tokens (N, T, C) and a basis (C, k), mean over elements."""
    return (tokens @ basis @ basis.T - tokens).abs().mean()
