"""Geometry written once and shared by every memory: lift a depth map, project points, z-buffer splat.

OpenCV convention throughout (see :mod:`mirage_viz.cameras`): a camera-frame point ``(x, y, z)`` with
``z > 0`` lands on pixel ``u = fx * x / z + cx``, ``v = fy * y / z + cy``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .cameras import Camera, Intrinsics

__all__ = ["check_depth", "backproject_depth", "project_points", "SplatResult", "splat_points"]


def check_depth(depth: torch.Tensor, name: str = "depth") -> torch.Tensor:
    """Validate a metric depth map (H, W): finite and > 0 everywhere. Returns it as float32."""
    if not isinstance(depth, torch.Tensor):
        depth = torch.as_tensor(depth)
    if depth.ndim != 2:
        raise ValueError(f"{name} must have shape (H, W), got {tuple(depth.shape)}")
    depth = depth.float()
    if not torch.isfinite(depth).all():
        raise ValueError(f"{name} contains NaN or inf; accepted: finite metric depth > 0")
    if (depth <= 0).any():
        raise ValueError(f"{name} contains values <= 0 (min {depth.min().item():.4g}); accepted: depth > 0")
    return depth


def pixel_grid(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates ``u`` (columns) and ``v`` (rows), each (H, W) float32."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    return u, v


def backproject_depth(depth: torch.Tensor, camera: Camera) -> torch.Tensor:
    """Lift every cell of ``depth`` (H, W) to world points (H * W, 3), row-major.

    ``camera.intrinsics`` must describe the same grid as ``depth`` (scale it first with
    :meth:`Camera.scaled_to` for a latent grid).
    """
    depth = check_depth(depth)
    k = camera.intrinsics
    if depth.shape != (k.height, k.width):
        raise ValueError(
            f"depth is {tuple(depth.shape)} but the camera grid is ({k.height}, {k.width}); "
            "scale the intrinsics to the depth grid first"
        )
    u, v = pixel_grid(k.height, k.width)
    x = (u - k.cx) / k.fx * depth
    y = (v - k.cy) / k.fy * depth
    points_cam = torch.stack([x, y, depth], dim=-1).reshape(-1, 3)  # [N, 3] camera frame
    c2w = camera.camera_to_world
    return points_cam @ c2w[:3, :3].T + c2w[:3, 3]  # [N, 3] world frame


def project_points(points_world: torch.Tensor, camera: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    """Project world points (N, 3) into ``camera``: returns ``uv`` (N, 2) in pixels and ``z`` (N,) depth.

    Points of any floating dtype are projected in float32. Points at or behind the camera plane
    (z <= 0) get non-finite ``uv``: check ``z``.
    """
    if points_world.ndim != 2 or points_world.shape[1] != 3:
        raise ValueError(f"points_world must have shape (N, 3), got {tuple(points_world.shape)}")
    uv, z = _project_rows(points_world.T, camera)
    return uv.T, z


def _project_rows(points_world: torch.Tensor, camera: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    """Projection on coordinate rows: points (3, N) -> uv (2, N) and z (N,).

    Rows, not (N, 3) records: every elementwise op then runs along N, several times faster on CPU.
    """
    w2c = camera.world_to_camera.float()
    points_cam = (w2c[:3, :3] @ points_world.float()).add_(w2c[:3, 3:])  # [3, N] camera frame
    z = points_cam[2]  # [N]
    k = camera.intrinsics
    focal = torch.tensor([[k.fx], [k.fy]])  # [2, 1]
    centre = torch.tensor([[k.cx], [k.cy]])  # [2, 1]
    uv = (points_cam[:2] * focal).div_(z).add_(centre)  # [2, N] pixels
    return uv, z


@dataclass
class SplatResult:
    """What a z-buffer splat leaves on a camera grid of H x W cells."""

    features: torch.Tensor  # (C, H, W); empty cells are 0
    mask: torch.Tensor  # (H, W) bool; True where a point landed
    depth: torch.Tensor  # (H, W); 0 where empty
    point_index: torch.Tensor  # (H, W) int64; index of the winning point, -1 where empty


_NO_HIT = torch.iinfo(torch.int64).max
_ARANGE = torch.arange(0)


def _arange(n: int) -> torch.Tensor:
    """0..n-1 as int64, from a buffer kept between calls (a read should not rebuild it)."""
    global _ARANGE
    if _ARANGE.shape[0] < n:
        _ARANGE = torch.arange(max(n, 2 * _ARANGE.shape[0]))
    return _ARANGE[:n]


def splat_points(
    points_world: torch.Tensor,
    features: torch.Tensor,
    camera: Camera,
    near: float = 1e-3,
) -> SplatResult:
    """Forward z-buffer splat of N points with C-dim features into ``camera``'s grid.

    Each point goes to the nearest cell (rounding), the closest depth wins (ties: lowest index),
    empty cells are zero. Vectorized in one pass: the key ``(depth bits << 32) | point index`` is
    reduced with ``amin`` per cell, which orders by depth because positive float32 bit patterns
    sort like the floats themselves.

    Args:
        points_world: (N, 3) world frame.
        features: (N, C).
        camera: target camera; its intrinsics give the grid size.
    """
    if features.ndim != 2 or features.shape[0] != points_world.shape[0]:
        raise ValueError(
            f"features must have shape (N, C) with N = {points_world.shape[0]}, got {tuple(features.shape)}"
        )
    k = camera.intrinsics
    height, width = k.height, k.width
    num_cells = height * width
    uv, z = _project_rows(points_world.T, camera)  # [2, N], [N]
    cell_xy = uv.round_()  # [2, N] (col, row) of the nearest cell, as floats (exact below 2**24)
    visible = (z > near) & (cell_xy[0] >= 0) & (cell_xy[0] < width) & (cell_xy[1] >= 0) & (cell_xy[1] < height)
    cell = (cell_xy[1] * width + cell_xy[0]).masked_fill_(~visible, num_cells).long()  # [N]; hidden -> spare bin
    # positive float32 bit patterns sort like the floats themselves; (bits << 32) | index, written as
    # arithmetic (int64 shifts and ors are several times slower on CPU)
    key = (z.view(torch.int32).long() * 2**32).add_(_arange(z.shape[0]))  # [N]
    best = torch.full((num_cells + 1,), _NO_HIT, dtype=torch.int64)
    best.scatter_reduce_(0, cell, key, reduce="amin", include_self=True)
    best = best[:num_cells]  # [H*W]
    hit = best != _NO_HIT  # [H*W]
    winner = (best & 0xFFFFFFFF).masked_fill_(~hit, 0)  # [H*W]; 0 is a placeholder where empty
    out = features.T.index_select(1, winner).float().mul_(hit)  # [C, H*W]; empty cells 0
    out_depth = z.index_select(0, winner).mul_(hit)  # [H*W]
    return SplatResult(
        features=out.reshape(-1, height, width),  # contiguous (C, H, W): the denoiser's convs want it so
        mask=hit.reshape(height, width),
        depth=out_depth.reshape(height, width),
        point_index=winner.masked_fill_(~hit, -1).reshape(height, width),
    )
