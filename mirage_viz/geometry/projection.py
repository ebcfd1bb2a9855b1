"""Pixel rays, pose builders, lifting a depth map and projecting points: written once, used by every layer above.

OpenCV convention throughout (see :mod:`mirage_viz.geometry.cameras`): a camera-frame point ``(x, y, z)`` with
``z > 0`` lands on pixel ``u = fx * x / z + cx``, ``v = fy * y / z + cy``.
"""

from __future__ import annotations

import math

import torch

from mirage_viz.geometry.cameras import Camera, Intrinsics

__all__ = ["check_depth", "pixel_grid", "camera_rays", "rotation_x", "rotation_y", "make_pose", "backproject_depth",
           "project_points", "rows_with_depth"]


def check_depth(depth: torch.Tensor, name: str = "depth", allow_holes: bool = False) -> torch.Tensor:
    """Validate a metric depth map (H, W): finite and > 0 everywhere. Returns it as float32.

    ``allow_holes=True`` also accepts NaN, meaning "no depth here" (a hole: nothing is lifted there); inf, zero and
    negative depth are refused either way.
    """
    if not isinstance(depth, torch.Tensor):
        depth = torch.as_tensor(depth)
    if depth.ndim != 2:
        raise ValueError(f"{name} must have shape (H, W), got {tuple(depth.shape)}")
    depth = depth.float()
    if not torch.isfinite(depth).all():
        if not allow_holes:
            raise ValueError(f"{name} contains NaN or inf; accepted: finite metric depth > 0")
        if torch.isinf(depth).any():
            raise ValueError(f"{name} contains inf; accepted: metric depth > 0, or NaN where there is no depth "
                             f"(a hole)")
    if (depth <= 0).any():  # NaN compares false: holes pass
        raise ValueError(f"{name} contains values <= 0 (min {depth[depth <= 0].min().item():.4g}); accepted: depth > 0")
    return depth


def pixel_grid(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates ``u`` (columns) and ``v`` (rows), each (H, W) float32."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    return u, v


def camera_rays(intrinsics: Intrinsics, u: torch.Tensor | None = None, v: torch.Tensor | None = None) -> torch.Tensor:
    """Camera-frame rays (N, 3) with z = 1 through pixels ``u`` (columns) and ``v`` (rows), each (N,) or any shape
    flattened; every pixel centre of the grid, row-major, when they are not given. A point at z-depth d on a ray
    is ``ray * d``."""
    k = intrinsics
    if u is None or v is None:
        u, v = pixel_grid(k.height, k.width)
    u, v = u.reshape(-1).float(), v.reshape(-1).float()
    return torch.stack([(u - k.cx) / k.fx, (v - k.cy) / k.fy, torch.ones_like(u)], dim=1)


def rotation_y(angle: float) -> torch.Tensor:
    """(3, 3) float64 rotation about the y axis (down, OpenCV): a camera with this rotation and a positive angle
    looks to the right of one without."""
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=torch.float64)


def rotation_x(angle: float) -> torch.Tensor:
    """(3, 3) float64 rotation about the x axis (right, OpenCV): a positive angle tilts the view up (towards -y)."""
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]], dtype=torch.float64)


def make_pose(rotation: torch.Tensor, translation: object) -> torch.Tensor:
    """A (4, 4) float64 pose from a rotation (3, 3) and a translation (3,): camera_to_world when ``rotation``
    maps camera axes to world axes and ``translation`` is the camera centre in the world."""
    pose = torch.eye(4, dtype=torch.float64)
    pose[:3, :3] = torch.as_tensor(rotation, dtype=torch.float64)
    pose[:3, 3] = torch.as_tensor(translation, dtype=torch.float64).reshape(3)
    return pose


def backproject_depth(depth: torch.Tensor, camera: Camera, allow_holes: bool = False) -> torch.Tensor:
    """Lift every cell of ``depth`` (H, W) to world points (H * W, 3), row-major.

    ``camera.intrinsics`` must describe the same grid as ``depth`` (scale it first with
    :meth:`Camera.scaled_to` for a latent grid). ``allow_holes=True`` accepts NaN depth (no depth there): those
    cells give NaN points, for the caller to drop (:func:`rows_with_depth`).
    """
    depth = check_depth(depth, allow_holes=allow_holes)
    k = camera.intrinsics
    if depth.shape != (k.height, k.width):
        raise ValueError(
            f"depth is {tuple(depth.shape)} but the camera grid is ({k.height}, {k.width}); "
            "scale the intrinsics to the depth grid first"
        )
    points_cam = camera_rays(k) * depth.reshape(-1, 1)  # [N, 3] camera frame
    c2w = camera.camera_to_world
    return points_cam @ c2w[:3, :3].T + c2w[:3, 3]  # [N, 3] world frame


def rows_with_depth(depth: torch.Tensor, *rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The rows of each of ``rows`` (H * W, ...), row-major over ``depth`` (H, W) as :func:`backproject_depth`
    lifts it, whose cell has depth (is not NaN); all of them, uncopied, when no cell is a hole."""
    kept = ~torch.isnan(torch.as_tensor(depth)).reshape(-1)  # [H*W]
    if any(r.ndim == 0 or r.shape[0] != kept.shape[0] for r in rows):
        raise ValueError(f"rows must have one row per depth cell ({kept.shape[0]}), got shapes "
                         f"{[tuple(r.shape) for r in rows]}")
    return rows if bool(kept.all()) else tuple(r[kept] for r in rows)


def project_points(points_world: torch.Tensor, camera: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    """Project world points (N, 3) into ``camera``: returns ``uv`` (N, 2) in pixels and ``z`` (N,) depth.

    Points of any floating dtype are projected in float32. Points at or behind the camera plane
    (z <= 0) get meaningless ``uv`` (non-finite at z = 0, mirrored behind): check ``z``.
    """
    if points_world.ndim != 2 or points_world.shape[1] != 3:
        raise ValueError(f"points_world must have shape (N, 3), got {tuple(points_world.shape)}")
    uv, z = _project_rows(points_world.T, camera)
    return uv.T, z


def _project_rows(
    points_world: torch.Tensor, camera: Camera, out: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Projection on coordinate rows: points (3, N) -> uv (2, N) and z (N,), views of one (3, N) tensor.

    Rows, not (N, 3) records: every elementwise op then runs along N, several times faster on CPU.
    ``out`` (3, N) float32 receives the result (no allocation).
    """
    w2c = camera.world_to_camera  # [4, 4] float32
    if points_world.dtype != torch.float32:
        points_world = points_world.float()
    if out is None:
        out = torch.empty(3, points_world.shape[1])
    torch.mm(w2c[:3, :3], points_world, out=out).add_(w2c[:3, 3:])  # [3, N] camera frame
    z = out[2]  # [N]
    k = camera.intrinsics
    uv = out[:2]  # [2, N] pixels, in place
    uv.mul_(torch.tensor([[k.fx], [k.fy]])).div_(z).add_(torch.tensor([[k.cx], [k.cy]]))
    return uv, z
