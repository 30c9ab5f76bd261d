"""MMFS's CLIP mapping M (Sec. 3.3, Eq. 6): a CLIP embedding -> the decoder's codes w+.

One token per code of D: the embedding plus a learnt positional embedding e_pos (n_l, d_c), through
a transformer encoder, each token then projected to w. The output is taken as an offset from the
mean style code (a buffer set from the decoder's mapping network), so M starts at the average
style rather than at zero, a choice of ours (the paper does not say how M's output is scaled).

    M = CLIPMapping(clip_dim=128, num_ws=5, w_dim=128, layers=4, heads=8, w_avg=w_avg)
    ws = M(clip.encode_images(reference))     # (N, 5, 128)
"""
from __future__ import annotations

import torch
from torch import nn


class CLIPMapping(nn.Module):
    """CLIP embeddings (N, clip_dim) -> D's codes (N, num_ws, w_dim)."""

    def __init__(self, *, clip_dim: int, num_ws: int, w_dim: int, layers: int, heads: int, w_avg: torch.Tensor):
        super().__init__()
        if clip_dim % heads:
            raise ValueError(f"{heads} attention heads do not divide the CLIP embedding's {clip_dim} numbers")
        self.pos = nn.Parameter(torch.randn(num_ws, clip_dim) * 0.02)
        layer = nn.TransformerEncoderLayer(clip_dim, heads, dim_feedforward=4 * clip_dim, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(clip_dim)
        self.to_w = nn.Linear(clip_dim, w_dim)
        nn.init.zeros_(self.to_w.weight)
        nn.init.zeros_(self.to_w.bias)
        self.register_buffer("w_avg", w_avg.detach().clone().reshape(num_ws, w_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        tokens = features[:, None, :] + self.pos[None]
        return self.w_avg + self.to_w(self.norm(self.transformer(tokens)))
