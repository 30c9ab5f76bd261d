"""A printable mesh from a generator's density field: marching cubes with vertex colours.

    mesh = mesh.extract(generator, ws[:1], resolution=128)     # a trimesh.Trimesh
    paths = mesh.export(mesh, folder, "portrait")              # .ply, .obj, .glb

The iso-level is the density the renderer itself puts its surface at: the field is sampled at the
expected-depth points of a few renders of the same code and the median density there is used
(EG3D's own scripts use a fixed level of 10 for their trained weights; a small CPU-trained field
need not reach it). Vertex colours are the field's colour features at the vertices, the colours of
the raw (pre-super-resolution) render.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import trimesh
from skimage import measure

from portraitlib import consistency
from portraitlib.generator3d import render
from portraitlib.nets.triplane import TriPlaneGenerator

FORMATS = ("ply", "obj", "glb")
"""File types :func:`export` writes (all through trimesh)."""


def _field_values(generator: TriPlaneGenerator, planes: torch.Tensor, points: torch.Tensor, *,
                  chunk: int = 262_144) -> tuple[torch.Tensor, torch.Tensor]:
    """Colours (P, 3) in [0, 1] and densities (P,) (after the renderer's activation) at points (P, 3)."""
    field = generator.field(planes)
    colours, sigmas = [], []
    for i in range(0, len(points), chunk):
        c, raw = field(points[None, i:i + chunk].to(planes))
        colours.append(c[0, :, :3].clamp(0, 1))
        sigmas.append(F.softplus(raw[0, :, 0] - 1))  # volume.march's activation (density offset -1)
    return torch.cat(colours), torch.cat(sigmas)


class NoSurfaceError(ValueError):
    """The generator renders no opaque surface for this code (nothing to mesh)."""


@torch.no_grad()
def surface_level(generator: TriPlaneGenerator, ws: torch.Tensor, *, yaws=(-30.0, 0.0, 30.0)) -> float:
    """Median density at the expected-depth surface of renders of code ws (1, num_ws[+3], w_dim)
    from orbit cameras at ``yaws``, inside the head's silhouette (opacity above 0.5)."""
    labels = consistency.yaw_labels(list(yaws))
    out = render(generator, ws.expand(len(labels), -1, -1), labels, weights=True)
    points = consistency.surface_points(out["image_depth"], labels)  # (K, r*r, 3)
    inside = out["opacity"].flatten(1) > 0.5
    if not inside.any():
        raise NoSurfaceError(f"the render of this code has no pixel of opacity above 0.5 (the most opaque: "
                             f"{out['opacity'].max().item():.2f}): nothing to mesh")
    _, sigma = _field_values(generator, generator.planes(ws), points[inside])
    return sigma.median().item()


@torch.no_grad()
def density_grid(generator: TriPlaneGenerator, planes: torch.Tensor, *, resolution: int,
                 bound: float | None = None) -> tuple[np.ndarray, float, float]:
    """Densities (R, R, R) (index order x, y, z) on a cube of half-side ``bound`` (default: half
    the tri-plane box) about the origin, the voxel size and the bound."""
    bound = generator.config.box_warp / 2 if bound is None else bound
    axis = torch.linspace(-bound, bound, resolution, device=planes.device)
    points = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    _, sigma = _field_values(generator, planes, points)
    return sigma.reshape(resolution, resolution, resolution).cpu().numpy(), 2 * bound / (resolution - 1), bound


@torch.no_grad()
def extract(generator: TriPlaneGenerator, ws: torch.Tensor, *, resolution: int = 128,
            level: float | None = None) -> trimesh.Trimesh:
    """The surface of code ws (1, num_ws[+3], w_dim) as a coloured triangle mesh in world units
    (EG3D's world: +y up, the face toward +z). ``level`` defaults to :func:`surface_level`."""
    if ws.ndim != 3 or len(ws) != 1:
        raise ValueError(f"extract meshes one code at a time: ws must be (1, num_ws, w_dim), got {tuple(ws.shape)}")
    planes = generator.planes(ws)
    level = surface_level(generator, ws) if level is None else float(level)
    grid, voxel, bound = density_grid(generator, planes, resolution=resolution)
    if not grid.min() < level < grid.max():
        raise NoSurfaceError(f"iso-level {level:.3g} is outside the field's density range "
                             f"[{grid.min():.3g}, {grid.max():.3g}]: no surface")
    # An empty layer around the grid closes the surface where the field reaches the box (neck, hair).
    vertices, faces, _, _ = measure.marching_cubes(np.pad(grid, 1), level=level, spacing=(voxel,) * 3)
    vertices = vertices - bound - voxel
    colours, _ = _field_values(generator, planes, torch.from_numpy(vertices.astype(np.float32)))
    rgba = np.concatenate([(colours.cpu().numpy() * 255).round(), np.full((len(vertices), 1), 255)], 1)
    # marching_cubes orients faces for density rising inward in (x, y, z) index order; trimesh
    # wants counter-clockwise seen from outside, so flip the winding.
    return trimesh.Trimesh(vertices=vertices, faces=faces[:, ::-1], vertex_colors=rgba.astype(np.uint8),
                           process=False)


def export(mesh: trimesh.Trimesh, folder: Path, stem: str, *, formats=FORMATS) -> dict[str, Path]:
    """Write ``mesh`` as ``<folder>/<stem>.<format>`` for each format; returns the paths."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown mesh formats {unknown}; choose from {FORMATS}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for fmt in formats:
        paths[fmt] = folder / f"{stem}.{fmt}"
        mesh.export(paths[fmt], file_type=fmt)
    return paths
