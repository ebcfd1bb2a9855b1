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
    """Project world points (N, 3) into ``camera``: returns ``uv`` (N, 2) in pixels and ``z`` (N,) depth."""
    if points_world.ndim != 2 or points_world.shape[1] != 3:
        raise ValueError(f"points_world must have shape (N, 3), got {tuple(points_world.shape)}")
    w2c = camera.world_to_camera
    points_cam = points_world.float() @ w2c[:3, :3].T + w2c[:3, 3]  # [N, 3] camera frame
    z = points_cam[:, 2]
    safe_z = torch.where(z > 1e-6, z, torch.ones_like(z))
    k = camera.intrinsics
    u = k.fx * points_cam[:, 0] / safe_z + k.cx
    v = k.fy * points_cam[:, 1] / safe_z + k.cy
    return torch.stack([u, v], dim=-1), z


@dataclass
class SplatResult:
    """What a z-buffer splat leaves on a camera grid of H x W cells."""

    features: torch.Tensor  # (C, H, W); empty cells are 0
    mask: torch.Tensor  # (H, W) bool; True where a point landed
    depth: torch.Tensor  # (H, W); 0 where empty
    point_index: torch.Tensor  # (H, W) int64; index of the winning point, -1 where empty


_NO_HIT = torch.iinfo(torch.int64).max


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
    num_channels = features.shape[1]
    uv, z = project_points(points_world, camera)
    col = torch.round(uv[:, 0])
    row = torch.round(uv[:, 1])
    visible = (z > near) & (col >= 0) & (col < width) & (row >= 0) & (row < height)
    index = torch.nonzero(visible, as_tuple=True)[0]  # [M] indices of visible points
    cell = row[index].long() * width + col[index].long()  # [M]
    depth_bits = z[index].contiguous().view(torch.int32).long()  # positive floats: monotone bit patterns
    key = (depth_bits << 32) | index  # [M]
    best = torch.full((height * width,), _NO_HIT, dtype=torch.int64)
    best.scatter_reduce_(0, cell, key, reduce="amin", include_self=True)
    hit = best != _NO_HIT  # [H*W]
    winner = torch.where(hit, best & 0xFFFFFFFF, torch.full_like(best, -1))  # [H*W]

    out = torch.zeros(height * width, num_channels, dtype=features.dtype)
    out[hit] = features[winner[hit]]
    out_depth = torch.zeros(height * width, dtype=torch.float32)
    out_depth[hit] = z[winner[hit]]
    return SplatResult(
        features=out.T.contiguous().reshape(num_channels, height, width),  # contiguous: a strided view would
        # make torch.cat hand the denoiser a channels-last tensor, which runs its convs ~2x slower on CPU
        mask=hit.reshape(height, width),
        depth=out_depth.reshape(height, width),
        point_index=winner.reshape(height, width),
    )
