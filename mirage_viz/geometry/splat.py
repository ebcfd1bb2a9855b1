"""The forward z-buffer splat every memory reads with (:func:`splat_points`: one vectorized pass), the sub-cell
refinement of its features (:func:`refine_splat_subcell`), and the plain loops they vectorize (the ``_reference``
functions), kept beside them for tests and for reading.

OpenCV convention (see :mod:`mirage_viz.geometry.cameras`): a camera-frame point ``(x, y, z)`` with ``z > 0``
lands on cell ``u = fx * x / z + cx``, ``v = fy * y / z + cy``, rounded to the nearest.

The z-test keeps first-hand content: in each cell, the points within a factor ``1 + 2**-depth_tie_bits`` of the
nearest point's depth tie, and of those the earliest written wins (memories write in time order). Points known to be
visible (``seen``, from :mod:`mirage_viz.geometry.visibility`) keep the points clearly in front of them out of
their cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mirage_viz.geometry.cameras import Camera
from mirage_viz.geometry.projection import _project_rows

__all__ = ["DEPTH_TIE_BITS", "SPLAT_NEAR", "SUBCELL_DEPTH_TOLERANCE", "SplatResult", "SplatWorkspace", "check_depth_tie_bits",
           "refine_splat_subcell", "refine_splat_subcell_reference", "splat_points", "splat_points_reference"]


@dataclass
class SplatResult:
    """What a z-buffer splat leaves on a camera grid of H x W cells."""

    features: torch.Tensor  # (C, H, W); empty cells are 0
    mask: torch.Tensor  # (H, W) bool; True where a point landed
    depth: torch.Tensor  # (H, W); 0 where empty
    point_index: torch.Tensor  # (H, W) int64; index of the winning point, -1 where empty


_NO_HIT = torch.iinfo(torch.int64).max
DEPTH_TIE_BITS = 5  # z-test tolerance 2**-5: depths within 3.1% of a cell's nearest tie, and the earliest point wins
SPLAT_NEAR = 1e-3  # metres: a point lands on the grid only in front of this camera-frame depth
_ARANGE = torch.arange(0)
# sub-cell refinement: a neighbour point blends into a cell only when its depth is within this fraction of the
# cell's winner's (the same surface; a depth edge between two objects is a larger jump)
SUBCELL_DEPTH_TOLERANCE = 0.1


def check_depth_tie_bits(bits: object) -> int:
    """``bits`` when it is a z-test tolerance in [0, 23] (see :func:`splat_points`), else a ``ValueError``."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 0 <= bits <= 23:
        raise ValueError(f"depth_tie_bits must be an integer in [0, 23] (the z-test ties depths within a factor "
                         f"1 + 2**-bits of a cell's nearest: 0 within a factor of 2, {DEPTH_TIE_BITS} within 3.1%, 23 only "
                         f"equal depths), got {bits!r}")
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
    near: float = SPLAT_NEAR,
    workspace: SplatWorkspace | None = None,
    depth_tie_bits: int = DEPTH_TIE_BITS,
    seen: torch.Tensor | None = None,
) -> SplatResult:
    """Forward z-buffer splat of N points with C-dim features into ``camera``'s grid.

    Each point goes to the nearest cell (rounding); empty cells are zero. The z-test has a tolerance: the points
    of a cell within a factor ``1 + 2**-depth_tie_bits`` of its nearest point's depth tie (default 5: 3.1%), and
    of those the lowest index (the earliest written) wins. Memories write in time order, so where several frames
    saw the same surface, the first view (the given frame, then the least drifted) is kept; a point clearly in
    front still wins. 23 leaves only equal depths tied.
    Vectorized in two passes of ``scatter_reduce``: the nearest depth per cell, then the lowest index among the
    points within the tolerance of it.
    ``seen`` marks the points known to be visible from ``camera``
    (:func:`~mirage_viz.geometry.visibility.seen_along_ray`: their own camera saw them along the same ray). In a cell that such a point reaches, the points clearly in front
    of the nearest one (beyond the tie tolerance) drop out: they only share the cell, off the ray it was seen along.
    The z-test then runs as above, so a seen point still ties with points on its surface and the earliest wins.

    Args:
        points_world: (N, 3) world frame.
        features: (N, C).
        camera: target camera; its intrinsics give the grid size.
        workspace: scratch buffers to reuse (see :class:`SplatWorkspace`); a fresh one when None.
        depth_tie_bits: z-test tolerance 2**-bits, 0 to 23 (see above).
        seen: (N,) bool, the points known to be visible (see above); None: a plain z-test.
    """
    check_depth_tie_bits(depth_tie_bits)
    if points_world.ndim != 2 or points_world.shape[1] != 3:
        raise ValueError(f"points_world must have shape (N, 3), got {tuple(points_world.shape)}")
    if features.ndim != 2 or features.shape[0] != points_world.shape[0]:
        raise ValueError(
            f"features must have shape (N, C) with N = {points_world.shape[0]}, got {tuple(features.shape)}"
        )
    if seen is not None and (seen.dtype != torch.bool or seen.shape != points_world.shape[:1]):
        raise ValueError(f"seen must be a bool tensor of shape (N,) = ({points_world.shape[0]},), got "
                         f"{seen.dtype} {tuple(seen.shape)}")
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
    if seen is not None:  # a point clearly in front of its cell's nearest seen point is off that ray: it drops out
        seen_depth = torch.full((num_cells + 1,), math.inf).scatter_reduce_(0, cell[seen], z[seen], reduce="amin")
        seen_depth.masked_fill_(seen_depth.isinf(), 0.0)[num_cells] = 0.0  # [H*W + 1]; 0: no seen point (or hidden)
        cell.masked_fill_(z * (1.0 + 2.0**-depth_tie_bits) < seen_depth[cell], num_cells)
    # pass 1: the nearest depth per cell; pass 2: the earliest point within the tolerance of it
    nearest = torch.full((num_cells + 1,), math.inf).scatter_reduce_(0, cell, z, reduce="amin", include_self=True)
    limit = torch.index_select(nearest, 0, cell, out=scratch.get("limit", (n,), torch.float32))  # [N]
    limit.mul_(1.0 + 2.0**-depth_tie_bits)
    tied = torch.le(z, limit, out=test)  # [N]; hidden points only tie in the spare bin
    key = scratch.get("key", (n,), torch.int64).copy_(_arange(n)).masked_fill_(tied.logical_not_(), _NO_HIT)  # [N]
    best = torch.full((num_cells + 1,), _NO_HIT, dtype=torch.int64)
    best.scatter_reduce_(0, cell, key, reduce="amin", include_self=True)
    best = best[:num_cells]  # [H*W]
    hit = best != _NO_HIT  # [H*W]
    winner = best.masked_fill_(~hit, 0)  # [H*W]; 0 is a placeholder where empty
    out = features.T.index_select(1, winner).float().masked_fill_(~hit, 0.0)  # [C, H*W]; empty cells 0
    out_depth = z.index_select(0, winner).masked_fill_(~hit, 0.0)  # [H*W]
    return SplatResult(
        features=out.reshape(-1, height, width),  # contiguous (C, H, W): the denoiser's convs want it so
        mask=hit.reshape(height, width),
        depth=out_depth.reshape(height, width),
        point_index=winner.masked_fill(~hit, -1).reshape(height, width),
    )


def refine_splat_subcell(
    points_world: torch.Tensor,
    features: torch.Tensor,
    camera: Camera,
    splat: SplatResult,
    groups: torch.Tensor | None = None,
    depth_tolerance: float = SUBCELL_DEPTH_TOLERANCE,
    near: float = SPLAT_NEAR,
) -> SplatResult:
    """Sub-cell accurate features for a nearest-cell ``splat`` of the same points: each cell's feature becomes the
    bilinear blend of the points that fall within one cell of its centre, weighted by their sub-cell offsets.

    :func:`splat_points` rounds each point to the nearest cell, so a surface seen from a new camera comes back
    shifted by up to half a cell (4 pixels for a latent with f = 8). Here every point spreads over the four cells
    around its projection ``(u, v)`` with the bilinear weights ``(1 - |u - col|) * (1 - |v - row|)``; a covered cell
    keeps the weighted mean of the points that reach it and belong to its winner's surface: the same group as the
    winner (``groups`` (N,) int64, e.g. the frame each point was lifted from, so first-hand content never blends
    with later views of it) and a depth within ``depth_tolerance`` of the winner's. For a surface lifted from a
    regular grid this is bilinear resampling of that grid at the new camera's cell centres. The mask, depth and
    winners stay the nearest splat's: which cells memory covers does not change, only what it says there (filling
    the cells between spread-apart points as well was measured, and lost 0.35 dB of a held-out loop's mean).
    OpenCV convention: cell ``(row, col)`` has its centre at ``(u, v) = (col, row)``, as :func:`splat_points` rounds.

    Args:
        points_world: (N, 3) world frame, the points ``splat`` was made of.
        features: (N, C).
        camera: the camera ``splat`` was made for.
        splat: :func:`splat_points` of these points into ``camera``.
        groups: (N,) int64 group of each point; None: one group.
        depth_tolerance: relative depth difference from the winner that still counts as its surface.
    """
    if not depth_tolerance >= 0:
        raise ValueError(f"depth_tolerance must be >= 0 (a fraction of the winner's depth), got {depth_tolerance!r}")
    if points_world.ndim != 2 or points_world.shape[1] != 3:
        raise ValueError(f"points_world must have shape (N, 3), got {tuple(points_world.shape)}")
    n = points_world.shape[0]
    if features.ndim != 2 or features.shape[0] != n:
        raise ValueError(f"features must have shape (N, C) with N = {n}, got {tuple(features.shape)}")
    if groups is not None and tuple(groups.shape) != (n,):
        raise ValueError(f"groups must have shape (N,) = ({n},), got {tuple(groups.shape)}")
    k = camera.intrinsics
    height, width = splat.mask.shape
    if (height, width) != (k.height, k.width) or splat.features.shape[0] != features.shape[1]:
        raise ValueError(f"splat is {splat.features.shape[0]} channels on {height}x{width} cells but the camera grid is "
                         f"{k.height}x{k.width} and the features have {features.shape[1]} channels: refine the splat "
                         "of these points into this camera")
    if n == 0 or not bool(splat.mask.any()):
        return splat
    # every (point, cell, weight) of the bilinear footprints that land on a covered cell: [M] each, M <= 4N
    uv, z = _project_rows(points_world.T, camera)  # [2, N], [N]
    base = uv.floor()  # [2, N] the cell up-left of each projection
    frac = uv - base  # [2, N] in [0, 1)
    winners = splat.point_index.reshape(-1)  # [H*W], -1 where empty
    indices, cells, weights = [], [], []
    for dcol, drow in ((0, 0), (1, 0), (0, 1), (1, 1)):
        col, row = base[0] + dcol, base[1] + drow  # [N] each
        weight = (frac[0] if dcol else 1 - frac[0]) * (frac[1] if drow else 1 - frac[1])  # [N]
        inside = (z > near) & (col >= 0) & (col < width) & (row >= 0) & (row < height) & (weight > 0)  # [N]
        index = torch.nonzero(inside).squeeze(1)  # [m]
        cell = (row[index] * width + col[index]).long()  # [m]
        covered = winners[cell] >= 0
        indices.append(index[covered])
        cells.append(cell[covered])
        weights.append(weight[index[covered]])
    index, cell, weight = torch.cat(indices), torch.cat(cells), torch.cat(weights)  # [M]
    winner = winners[cell]  # [M]
    reference = z[winner]  # [M] the winner's depth
    same = (z[index] - reference).abs() <= depth_tolerance * reference  # [M] the winner's surface
    if groups is not None:
        same &= groups[index] == groups[winner]
    index, cell, weight = index[same], cell[same], weight[same]  # [K]
    channels = features.shape[1]
    total = torch.zeros(channels, height * width).index_add_(1, cell, features.T.float()[:, index] * weight)  # [C, H*W]
    weight_sum = torch.zeros(height * width).index_add_(0, cell, weight)  # [H*W]; a winner always reaches its cell
    mask = splat.mask.reshape(-1)  # [H*W]
    refined = torch.zeros(channels, height * width)  # [C, H*W]; empty cells 0
    refined[:, mask] = total[:, mask] / weight_sum[mask]
    return SplatResult(features=refined.reshape(channels, height, width), mask=splat.mask, depth=splat.depth,
                       point_index=splat.point_index)


def refine_splat_subcell_reference(points_world: torch.Tensor, features: torch.Tensor, camera: Camera,
                                   splat: SplatResult, groups: torch.Tensor | None = None,
                                   depth_tolerance: float = SUBCELL_DEPTH_TOLERANCE, near: float = SPLAT_NEAR) -> torch.Tensor:
    """:func:`refine_splat_subcell` written as a plain loop over points and the four cells around each; slow, for
    tests and for reading. Returns the refined features (C, H, W), empty cells zero."""
    k = camera.intrinsics
    w2c = camera.world_to_camera
    channels = features.shape[1]
    total = torch.zeros(channels, k.height, k.width, dtype=torch.float64)
    weight_sum = torch.zeros(k.height, k.width, dtype=torch.float64)
    for index in range(points_world.shape[0]):
        x, y, z = (w2c[:3, :3] @ points_world[index].float() + w2c[:3, 3]).tolist()
        if z <= near:
            continue
        u, v = k.fx * x / z + k.cx, k.fy * y / z + k.cy
        for col in (math.floor(u), math.floor(u) + 1):
            for row in (math.floor(v), math.floor(v) + 1):
                weight = (1 - abs(u - col)) * (1 - abs(v - row))
                if not (0 <= col < k.width and 0 <= row < k.height and weight > 0 and splat.mask[row, col]):
                    continue
                winner = int(splat.point_index[row, col])
                reference = float(splat.depth[row, col])
                if abs(z - reference) > depth_tolerance * reference:
                    continue
                if groups is not None and groups[index] != groups[winner]:
                    continue
                total[:, row, col] += weight * features[index].double()
                weight_sum[row, col] += weight
    out = torch.zeros(channels, k.height, k.width)
    out[:, splat.mask] = (total[:, splat.mask] / weight_sum[splat.mask]).float()
    return out


def splat_points_reference(points_world: torch.Tensor, features: torch.Tensor, camera: Camera, near: float = SPLAT_NEAR,
                           depth_tie_bits: int = DEPTH_TIE_BITS,
                           seen: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`splat_points` written as the plain loops it vectorizes (as gsplat keeps a torch reference beside its
    kernels): a first loop finds each cell's nearest depth, a second keeps, per cell, the first point in write order
    whose depth is within a factor ``1 + 2**-depth_tie_bits`` of it. With ``seen``, the points clearly in front of
    their cell's nearest seen point are left out first. Slow; for tests and for reading. Returns features (C, H, W),
    empty cells zero, and the hit mask (H, W)."""
    k = camera.intrinsics
    w2c = camera.world_to_camera
    landed = []  # (index, row, col, z) of the points that land on the grid
    for index in range(points_world.shape[0]):
        x, y, z = (w2c[:3, :3] @ points_world[index] + w2c[:3, 3]).tolist()
        if z <= near:
            continue
        col, row = round(k.fx * x / z + k.cx), round(k.fy * y / z + k.cy)
        if 0 <= col < k.width and 0 <= row < k.height:
            landed.append((index, row, col, torch.tensor(z, dtype=torch.float32)))
    if seen is not None:  # per cell, the nearest seen point's depth; the points clearly in front of it drop out
        seen_depth: dict[tuple[int, int], torch.Tensor] = {}
        for index, row, col, z in landed:
            if seen[index]:
                seen_depth[row, col] = min(seen_depth.get((row, col), z), z)
        landed = [(index, row, col, z) for index, row, col, z in landed
                  if not z * (1.0 + 2.0**-depth_tie_bits) < seen_depth.get((row, col), 0.0)]
    nearest = torch.full((k.height, k.width), math.inf)
    for _, row, col, z in landed:
        nearest[row, col] = min(nearest[row, col], z)
    out = torch.zeros(features.shape[1], k.height, k.width)
    taken = torch.zeros(k.height, k.width, dtype=torch.bool)
    for index, row, col, z in landed:
        if not taken[row, col] and z <= nearest[row, col] * (1.0 + 2.0**-depth_tie_bits):
            taken[row, col] = True
            out[:, row, col] = features[index]
    return out, taken
