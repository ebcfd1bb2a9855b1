"""A fused point cache: points falling in one voxel are merged, so revisiting a place adds nothing.

Beyond the paper's flat cache. Each voxel of ``voxel_size`` metres keeps one point and its feature:
the first written (``reduce="oldest"``: later frames only add voxels never seen, like the splat's
tie rule that favours the earliest view), the newest written (``reduce="newest"``), or the running
mean of the positions and features written there (``reduce="mean"``, with a per-voxel count). The
point keeps its own position (not the voxel's centre), so fusion bounds the cache without moving
what it warps; the voxel is found again from the position at each append.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

from mirage_viz.checks import check_choice

__all__ = ["FUSION_MODES", "VOXEL_SIZE_RANGE", "FusionMode", "VoxelPointCache", "check_fusion", "check_voxel_size"]

FusionMode = Literal["oldest", "newest", "mean"]
FUSION_MODES: tuple[FusionMode, ...] = get_args(FusionMode)
VOXEL_SIZE_RANGE = (0.001, 10.0)  # metres


def check_fusion(fusion: object) -> FusionMode:
    """``fusion`` when it is a fusion mode, else a ``ValueError`` saying which are."""
    return check_choice("fusion", fusion, FUSION_MODES)


def check_voxel_size(voxel_size: object) -> float:
    """``voxel_size`` as a float, or a ``ValueError`` naming the accepted range."""
    low, high = VOXEL_SIZE_RANGE
    if isinstance(voxel_size, bool) or not isinstance(voxel_size, (int, float)) or not low <= voxel_size <= high:
        raise ValueError(f"voxel_size must be a number of metres in [{low:g}, {high:g}], got {voxel_size!r}")
    return float(voxel_size)

_COORD_LIMIT = 2**15 - 1  # voxel coordinates are packed in 16 bits each
_MAX_COUNT = 2**15 - 1  # int16 counts saturate: later features still move the mean by 1 / 32767


class VoxelPointCache:
    """Voxel-fused cache with the :class:`~mirage_viz.memories.point_cache.PointCache` interface.

    Not append-only: an append may replace features of voxels already stored, and the entries are
    kept sorted by voxel key. An append builds new tensors and never changes the stored ones in place,
    so a :meth:`snapshot` is the stored tensors themselves (no copy).
    """

    append_only = False

    def __init__(self, voxel_size: float, reduce: FusionMode = "oldest", dtype: torch.dtype = torch.float32) -> None:
        voxel_size = check_voxel_size(voxel_size)
        check_fusion(reduce)
        if not dtype.is_floating_point:
            raise ValueError(f"features are stored as floating point; got {dtype}")
        self.voxel_size = float(voxel_size)
        self.reduce = reduce
        self.dtype = dtype
        self.clear()

    def append(self, points: torch.Tensor, features: torch.Tensor) -> None:
        """Merge points (M, 3) with features (M, C) into their voxels."""
        if points.ndim != 2 or points.shape[1] != 3 or features.ndim != 2 or features.shape[0] != points.shape[0]:
            raise ValueError(f"expected points (M, 3) and features (M, C), got {tuple(points.shape)} and {tuple(features.shape)}")
        if len(self) and features.shape[1] != self._features.shape[1]:
            raise ValueError(f"features have {features.shape[1]} channels but the cache holds {self._features.shape[1]}")
        if not torch.isfinite(points).all():
            raise ValueError("points must be finite (a NaN or inf point has no voxel)")
        if points.numel() and float(points.abs().max()) / self.voxel_size > _COORD_LIMIT:
            raise ValueError(
                f"points reach {float(points.abs().max()):.4g} m: beyond {_COORD_LIMIT} voxels of {self.voxel_size} m "
                "from the origin; use a larger voxel_size"
            )
        positions = torch.cat([self._points.float(), points.float()])  # [K + M, 3] stored first, then new
        keys = _voxel_keys(torch.floor(positions / self.voxel_size).to(torch.int32))  # [K + M]
        unique_keys, slot = torch.unique(keys, return_inverse=True)  # sorted; slot: [K + M] -> voxel
        num_voxels = unique_keys.shape[0]
        stored = self._features.float() if len(self) else torch.zeros(0, features.shape[1])
        stacked = torch.cat([stored, features.float()])  # [K + M, C]
        if self.reduce in ("oldest", "newest"):
            order = torch.arange(keys.shape[0])  # later rows were written later
            pick = torch.full((num_voxels,), -1 if self.reduce == "newest" else keys.shape[0], dtype=torch.int64)
            pick.scatter_reduce_(0, slot, order, reduce="amax" if self.reduce == "newest" else "amin")
            self._points, self._features = positions[pick].to(self.dtype), stacked[pick].to(self.dtype)
        else:
            weights = torch.cat([self._counts.float(), torch.ones(points.shape[0])])  # [K + M]
            count = torch.zeros(num_voxels).index_add_(0, slot, weights)  # [V]
            total = torch.zeros(num_voxels, stacked.shape[1]).index_add_(0, slot, stacked * weights[:, None])
            where = torch.zeros(num_voxels, 3).index_add_(0, slot, positions * weights[:, None])  # [V, 3]
            self._points = (where / count[:, None]).to(self.dtype)
            self._features = (total / count[:, None]).to(self.dtype)
            self._counts = count.clamp(max=_MAX_COUNT).to(torch.int16)

    def snapshot(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The stored points (N, 3), features (N, C) and counts (N,) as they are: :meth:`restore` puts them back."""
        return self._points, self._features, self._counts

    def restore(self, snapshot: object) -> None:
        """Back to the state of :meth:`snapshot`."""
        if not isinstance(snapshot, tuple) or len(snapshot) != 3 or not all(isinstance(t, torch.Tensor) for t in snapshot):
            raise ValueError("a voxel cache restores a snapshot it took: (points, features, counts) tensors")
        self._points, self._features, self._counts = snapshot

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Points (N, 3) and features (N, C), one per voxel, in the stored dtype."""
        return self._points, self._features

    def __len__(self) -> int:
        return self._points.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes stored: points, features and (for ``mean``) counts."""
        return self._points.nbytes + self._features.nbytes + self._counts.nbytes

    @property
    def capacity_nbytes(self) -> int:
        return self.nbytes

    def clear(self) -> None:
        self._points = torch.zeros(0, 3, dtype=self.dtype)  # [N, 3] world frame, one point per voxel
        self._features = torch.zeros(0, 0, dtype=self.dtype)  # [N, C]
        self._counts = torch.zeros(0, dtype=torch.int16)  # [N] writes merged per voxel (mean only)


def _voxel_keys(voxels: torch.Tensor) -> torch.Tensor:
    """One int64 per voxel: three coordinates in [-2**15, 2**15) offset to 16-bit unsigned and packed."""
    shifted = voxels.long() + 2**15  # [N, 3] in [0, 2**16)
    return (shifted[:, 0] * 2**32) + (shifted[:, 1] * 2**16) + shifted[:, 2]
