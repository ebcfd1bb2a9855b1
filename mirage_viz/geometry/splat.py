"""The forward z-buffer splat every memory reads with (:func:`splat_points`: one vectorized pass), and the plain
loop it vectorizes (:func:`splat_points_reference`), kept beside it for tests and for reading.

OpenCV convention (see :mod:`mirage_viz.geometry.cameras`): a camera-frame point ``(x, y, z)`` with ``z > 0``
lands on cell ``u = fx * x / z + cx``, ``v = fy * y / z + cy``, rounded to the nearest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mirage_viz.geometry.cameras import Camera
from mirage_viz.geometry.projection import _project_rows

__all__ = ["DEPTH_MANTISSA_BITS", "SplatResult", "SplatWorkspace", "check_depth_tie_bits", "splat_points",
           "splat_points_reference"]


@dataclass
class SplatResult:
    """What a z-buffer splat leaves on a camera grid of H x W cells."""

    features: torch.Tensor  # (C, H, W); empty cells are 0
    mask: torch.Tensor  # (H, W) bool; True where a point landed
    depth: torch.Tensor  # (H, W); 0 where empty
    point_index: torch.Tensor  # (H, W) int64; index of the winning point, -1 where empty


_NO_HIT = torch.iinfo(torch.int64).max
DEPTH_MANTISSA_BITS = 5  # z-test precision: depths within ~3% tie, and the earliest point wins
_ARANGE = torch.arange(0)


def check_depth_tie_bits(bits: object) -> int:
    """``bits`` when it is a z-test precision in [0, 23] (see :func:`splat_points`), else a ``ValueError``."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 0 <= bits <= 23:
        raise ValueError(f"depth_tie_bits must be an integer in [0, 23] (the z-test's mantissa bits: 0 ties depths within "
                         f"a factor of 2, {DEPTH_MANTISSA_BITS} within about 3%, 23 compares exact depths), got {bits!r}")
    return bits


def _arange(n: int) -> torch.Tensor:
    """0..n-1 as int64, from a buffer kept between calls (a read should not rebuild it). Thread-safe:
    each call works on its own reference, and a grown buffer only ever replaces a shorter one's use."""
    global _ARANGE
    buffer = _ARANGE
    if buffer.shape[0] < n:
        buffer = torch.arange(max(n, 2 * buffer.shape[0]))
        _ARANGE = buffer
    return buffer[:n]


class SplatWorkspace:
    """Scratch buffers that :func:`splat_points` reuses from call to call.

    Without one, each splat allocates about 30 bytes per point of fresh memory, and fresh pages
    fault in: after a large allocation elsewhere has been given back to the system, that alone
    doubles the time of a small latent read. A memory keeps one workspace (one per instance, so
    never shared between threads).
    """

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """A tensor of ``shape`` and ``dtype`` (uninitialised) backed by the buffer ``name``."""
        numel = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.dtype != dtype or buffer.numel() < numel:
            spare = 0 if buffer is None or buffer.dtype != dtype else 2 * buffer.numel()
            buffer = self._buffers[name] = torch.empty(max(numel, spare), dtype=dtype)
        return buffer[:numel].view(shape)


def splat_points(
    points_world: torch.Tensor,
    features: torch.Tensor,
    camera: Camera,
    near: float = 1e-3,
    workspace: SplatWorkspace | None = None,
    depth_mantissa_bits: int = DEPTH_MANTISSA_BITS,
) -> SplatResult:
    """Forward z-buffer splat of N points with C-dim features into ``camera``'s grid.

    Each point goes to the nearest cell (rounding), the closest depth wins, empty cells are zero.
    Depths are compared on ``depth_mantissa_bits`` of float32's 23 mantissa bits: with the default 5,
    depth is cut into bins 2**-5 of their octave wide (1.6% to 3.1% of the depth), points in one bin
    tie, and the lowest index (the earliest written) wins. Memories write in time order, so where several frames saw the same surface, the
    first view (the given frame, then the least drifted) is kept; 23 compares exact depths.
    Vectorized in one pass: the key ``(depth bits << 32) | point index`` is reduced with ``amin``
    per cell, which orders by depth because positive float32 bit patterns sort like the floats.

    Args:
        points_world: (N, 3) world frame.
        features: (N, C).
        camera: target camera; its intrinsics give the grid size.
        workspace: scratch buffers to reuse (see :class:`SplatWorkspace`); a fresh one when None.
        depth_mantissa_bits: depth precision of the z-test, 0 to 23 (see above).
    """
    check_depth_tie_bits(depth_mantissa_bits)
    if points_world.ndim != 2 or points_world.shape[1] != 3:
        raise ValueError(f"points_world must have shape (N, 3), got {tuple(points_world.shape)}")
    if features.ndim != 2 or features.shape[0] != points_world.shape[0]:
        raise ValueError(
            f"features must have shape (N, C) with N = {points_world.shape[0]}, got {tuple(features.shape)}"
        )
    k = camera.intrinsics
    height, width = k.height, k.width
    num_cells = height * width
    n = points_world.shape[0]
    if n == 0:
        return SplatResult(features=torch.zeros(features.shape[1], height, width), mask=torch.zeros(height, width, dtype=torch.bool),
                           depth=torch.zeros(height, width), point_index=torch.full((height, width), -1, dtype=torch.int64))
    scratch = workspace or SplatWorkspace()
    uv, z = _project_rows(points_world.T, camera, out=scratch.get("camera", (3, n), torch.float32))  # [2, N], [N]
    col, row = uv.round_()  # (col, row) of the nearest cell, as floats (exact below 2**24)
    visible, test = scratch.get("visible", (n,), torch.bool), scratch.get("test", (n,), torch.bool)
    torch.gt(z, near, out=visible)
    for values, op, bound in ((col, torch.ge, 0), (col, torch.lt, width), (row, torch.ge, 0), (row, torch.lt, height)):
        visible.logical_and_(op(values, bound, out=test))
    cell_float = torch.mul(row, width, out=scratch.get("cell_float", (n,), torch.float32)).add_(col)
    cell_float.masked_fill_(visible.logical_not_(), num_cells)  # hidden points -> a spare bin
    cell = scratch.get("cell", (n,), torch.int64).copy_(cell_float)  # [N]
    # positive float32 bit patterns sort like the floats themselves; (bits << 32) | index, written as
    # arithmetic (int64 shifts and ors are several times slower on CPU)
    depth_bits = z.view(torch.int32) >> (23 - depth_mantissa_bits)  # [N] depth on the chosen precision
    key = scratch.get("key", (n,), torch.int64).copy_(depth_bits).mul_(2**32).add_(_arange(n))  # [N]
    best = torch.full((num_cells + 1,), _NO_HIT, dtype=torch.int64)
    best.scatter_reduce_(0, cell, key, reduce="amin", include_self=True)
    best = best[:num_cells]  # [H*W]
    hit = best != _NO_HIT  # [H*W]
    winner = (best & 0xFFFFFFFF).masked_fill_(~hit, 0)  # [H*W]; 0 is a placeholder where empty
    out = features.T.index_select(1, winner).float().masked_fill_(~hit, 0.0)  # [C, H*W]; empty cells 0
    out_depth = z.index_select(0, winner).masked_fill_(~hit, 0.0)  # [H*W]
    return SplatResult(
        features=out.reshape(-1, height, width),  # contiguous (C, H, W): the denoiser's convs want it so
        mask=hit.reshape(height, width),
        depth=out_depth.reshape(height, width),
        point_index=winner.masked_fill_(~hit, -1).reshape(height, width),
    )


def splat_points_reference(points_world: torch.Tensor, features: torch.Tensor, camera: Camera, near: float = 1e-3,
                           depth_mantissa_bits: int = DEPTH_MANTISSA_BITS) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`splat_points` written as the plain loop it vectorizes (as gsplat keeps a torch reference beside its
    kernels): each point in write order goes to its nearest cell and stays when its depth, on
    ``depth_mantissa_bits`` of precision, is closer than the cell's so far (ties: the earlier point). Slow; for
    tests and for reading. Returns features (C, H, W), empty cells zero, and the hit mask (H, W)."""
    k = camera.intrinsics
    out = torch.zeros(features.shape[1], k.height, k.width)
    closest = torch.full((k.height, k.width), _NO_HIT, dtype=torch.int64)
    w2c = camera.world_to_camera
    for index in range(points_world.shape[0]):
        x, y, z = (w2c[:3, :3] @ points_world[index] + w2c[:3, 3]).tolist()
        if z <= near:
            continue
        col, row = round(k.fx * x / z + k.cx), round(k.fy * y / z + k.cy)
        key = int(torch.tensor([z], dtype=torch.float32).view(torch.int32)) >> (23 - depth_mantissa_bits)
        if 0 <= col < k.width and 0 <= row < k.height and key < closest[row, col]:
            closest[row, col] = key
            out[:, row, col] = features[index]
    return out, closest != _NO_HIT
