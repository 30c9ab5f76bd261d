"""3DAvatarGAN's thin-plate-spline deformation of the front tri-plane (Sec. 3.4).

The front plane P_0 (the (x, y) plane the camera faces) carries most of the head, so exaggerated
geometry (larger eyes, a longer jaw) is learned as a 2D warp of that plane alone, after G_t is
trained and with G_t frozen. A TPS network, "a standard StyleGAN2 layer with an MLP appended",
reads the front plane modulated by w and predicts the displacement of K x K control points; the
plane is resampled through the spline they define.

**The spline.** With control points c_i on a regular grid in [-1, 1]^2 and displacements v_i, the
TPS f(p) = A [1, p] + sum_i W_i U(|p - c_i|), U(r) = r^2 log r^2, interpolates f(c_i) = v_i with the
least bending. Its coefficients are linear in v: [W; A] = L^-1 [v; 0], L = [[K, P], [P^T, 0]],
K_ij = U(|c_i - c_j|), P_i = [1, c_i]; so L^-1 is computed once. The warped plane at p samples the
plane at p + f(p) (bilinear, border padding). Its **bending energy** tr(W^T K W) is zero for an
affine map and grows with the warp's curvature: our reading of the seed's R(T_2), the regulariser
of the spline's non-affine part (the seed's TPS equations are cut).

    tps = TPSNet(channels=16, w_dim=128, resolution=32, grid=4)
    G_def = DeformedGenerator(generator=G_t, tps=tps)   # G_t's calls; its front plane warped
    out = G_def.synthesis(ws, c)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from portraitlib.nets.layers import FullyConnectedLayer, SynthesisLayer
from portraitlib.nets.triplane import TriPlaneGenerator


def _kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """U(|a_i - b_j|) = r^2 log r^2 (0 at r = 0) for points a (M, 2) and b (K, 2) -> (M, K)."""
    r2 = (a[:, None] - b[None]).square().sum(-1)
    return r2 * torch.log(r2.clamp_min(1e-12))


class ThinPlateSpline(nn.Module):
    """The TPS of K x K control points on [-1, 1]^2, evaluated on an R x R plane's pixel centres."""

    def __init__(self, *, grid: int, resolution: int):
        super().__init__()
        if grid < 2:
            raise ValueError(f"a TPS needs at least a 2 x 2 control grid, got {grid}")
        axis = torch.linspace(-1.0, 1.0, grid, dtype=torch.float64)
        controls = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2)  # (K^2, 2) as (x, y)
        k = len(controls)
        affine = torch.cat([torch.ones(k, 1, dtype=torch.float64), controls], 1)
        system = torch.zeros(k + 3, k + 3, dtype=torch.float64)
        system[:k, :k], system[:k, k:], system[k:, :k] = _kernel(controls, controls), affine, affine.t()
        inverse = torch.linalg.inv(system)[:, :k]  # [W; A] = inverse @ v
        identity = F.affine_grid(torch.eye(2, 3, dtype=torch.float64)[None], [1, 1, resolution, resolution],
                                 align_corners=False)[0]  # (R, R, 2) pixel centres as (x, y)
        pixels = identity.reshape(-1, 2)
        basis = torch.cat([_kernel(pixels, controls), torch.ones(len(pixels), 1, dtype=torch.float64), pixels], 1)
        self.grid, self.resolution = grid, resolution
        self.register_buffer("controls", controls.float())
        self.register_buffer("identity", identity.float())
        self.register_buffer("interpolate", (basis @ inverse).float())  # (R^2, K^2): v -> f at each pixel
        self.register_buffer("bending_matrix", (inverse[:k].t() @ _kernel(controls, controls) @ inverse[:k]).float())

    def displacement(self, offsets: torch.Tensor) -> torch.Tensor:
        """f at every pixel (N, R, R, 2) for control displacements ``offsets`` (N, K^2, 2)."""
        return (self.interpolate @ offsets).view(len(offsets), self.resolution, self.resolution, 2)

    def warp(self, plane: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """The plane (N, C, R, R) sampled at p + f(p); ``offsets`` (N, K^2, 2) zero: the plane itself."""
        grid = self.identity + self.displacement(offsets)
        return F.grid_sample(plane, grid.to(plane.dtype), mode="bilinear", padding_mode="border", align_corners=False)

    def bending(self, offsets: torch.Tensor) -> torch.Tensor:
        """Bending energy tr(W^T K W) (N,) of each spline; 0 for an affine one."""
        return torch.einsum("nkd,kl,nld->n", offsets, self.bending_matrix, offsets)


class TPSNet(nn.Module):
    """Front plane (N, C, R, R) and w (N, w_dim) -> control displacements (N, K^2, 2) in
    [-max_offset, max_offset]: a modulated 3x3 layer (StyleGAN2's), pooled to 4 x 4, then an MLP
    whose last layer starts at zero (the identity warp)."""

    def __init__(self, *, channels: int, w_dim: int, resolution: int, grid: int = 4, hidden: int = 64,
                 max_offset: float = 0.25):
        super().__init__()
        self.max_offset = max_offset
        self.spline = ThinPlateSpline(grid=grid, resolution=resolution)
        self.layer = SynthesisLayer(channels, hidden, w_dim=w_dim, resolution=resolution)
        self.mlp = nn.Sequential(FullyConnectedLayer(hidden * 16, hidden, activation="lrelu"),
                                 FullyConnectedLayer(hidden, grid * grid * 2))
        nn.init.zeros_(self.mlp[-1].weight)

    def forward(self, front: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.layer(front, w, noise_mode="none"), 4).flatten(1)
        return self.max_offset * torch.tanh(self.mlp(x)).view(len(x), -1, 2)


class DeformedGenerator(nn.Module):
    """G_t (frozen) with its front plane warped by ``tps``: the calls of :class:`TriPlaneGenerator`
    (``mapping``, ``planes``, ``field``, ``synthesis``), so training and rendering take it as G."""

    def __init__(self, *, generator: TriPlaneGenerator, tps: TPSNet):
        super().__init__()
        self.generator, self.tps = generator.requires_grad_(False), tps
        self.config = generator.config

    def mapping(self, z: torch.Tensor, c: torch.Tensor, **options) -> torch.Tensor:
        return self.generator.mapping(z, c, **options)

    def offsets(self, ws: torch.Tensor, planes: torch.Tensor) -> torch.Tensor:
        """The TPS displacements (N, K^2, 2) of G_t's undeformed ``planes`` for codes ws."""
        return self.tps(planes[:, 0], ws[:, :self.generator.num_ws].mean(1))

    def planes(self, ws: torch.Tensor, *, noise_mode: str = "const", offsets: torch.Tensor | None = None
               ) -> torch.Tensor:
        """G_t's planes (N, 3, C, R, R) with the front one warped by its own TPS, or by ``offsets``
        (N, K^2, 2) given (another head's deformation: a geometric edit, the paper's Fig. 6)."""
        planes = self.generator.planes(ws, noise_mode=noise_mode)
        offsets = self.offsets(ws, planes) if offsets is None else offsets
        front = self.tps.spline.warp(planes[:, 0], offsets)
        return torch.cat([front[:, None], planes[:, 1:]], 1)

    def field(self, planes: torch.Tensor):
        return self.generator.field(planes)

    def synthesis(self, ws: torch.Tensor, c: torch.Tensor, *, planes: torch.Tensor | None = None,
                  noise_mode: str = "const", **options) -> dict[str, torch.Tensor]:
        if ws.shape[1] == 1:
            ws = ws.repeat(1, self.generator.num_ws, 1)
        planes = self.planes(ws, noise_mode=noise_mode) if planes is None else planes
        return self.generator.synthesis(ws, c, planes=planes, noise_mode=noise_mode, **options)

    def bending(self, ws: torch.Tensor) -> torch.Tensor:
        """R(T_2) (N,) of codes ws: the bending energy of each one's spline."""
        return self.tps.spline.bending(self.offsets(ws, self.generator.planes(ws)))
