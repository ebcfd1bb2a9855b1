"""A fused point cache: points falling in one voxel are merged, so revisiting a place adds nothing.

Beyond the paper's flat cache. Each voxel of ``voxel_size`` metres keeps the first point written there and its
feature: later frames only add voxels never seen, like the splat's tie rule that favours the earliest view. The
point keeps its own position (not the voxel's centre), so fusion bounds the cache without moving what it warps; the
voxel is found again from the position at each append. (Keeping the newest or the running mean per voxel was
measured and removed: neither came closer to the truth on a 48-step loop, and the mean took 15% more bytes.)
"""

from __future__ import annotations

import torch

__all__ = ["VOXEL_SIZE_RANGE", "VoxelPointCache", "check_voxel_size"]

VOXEL_SIZE_RANGE = (0.001, 10.0)  # metres


def check_voxel_size(voxel_size: object) -> float | None:
    """``voxel_size`` as a float (``None``: no fusion, the flat cache), or a ``ValueError`` naming the accepted range."""
    if voxel_size is None:
        return None
    low, high = VOXEL_SIZE_RANGE
    if isinstance(voxel_size, bool) or not isinstance(voxel_size, (int, float)) or not low <= voxel_size <= high:
        raise ValueError(f"voxel_size must be a number of metres in [{low:g}, {high:g}], got {voxel_size!r}")
    return float(voxel_size)

_COORD_LIMIT = 2**15 - 1  # voxel coordinates are packed in 16 bits each


class VoxelPointCache:
    """Voxel-fused cache with the :class:`~mirage_viz.memories.point_cache.PointCache` interface.

    Not append-only: an append may replace features of voxels already stored, and the entries are
    kept sorted by voxel key. An append builds new tensors and never changes the stored ones in place,
    so a :meth:`snapshot` is the stored tensors themselves (no copy).
    """

    append_only = False

    def __init__(self, voxel_size: float, dtype: torch.dtype = torch.float32) -> None:
        if voxel_size is None:
            raise ValueError("a voxel cache needs a voxel_size in metres")
        voxel_size = check_voxel_size(voxel_size)
        if not dtype.is_floating_point:
            raise ValueError(f"features are stored as floating point; got {dtype}")
        self.voxel_size = float(voxel_size)
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
        order = torch.arange(keys.shape[0])  # [K + M] later rows were written later
        first = torch.full((num_voxels,), keys.shape[0], dtype=torch.int64).scatter_reduce_(0, slot, order, reduce="amin")
        self._points, self._features = positions[first].to(self.dtype), stacked[first].to(self.dtype)  # [V, 3], [V, C]

    def snapshot(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored points (N, 3) and features (N, C) as they are: :meth:`restore` puts them back."""
        return self._points, self._features

    def restore(self, snapshot: object) -> None:
        """Back to the state of :meth:`snapshot`."""
        if not isinstance(snapshot, tuple) or len(snapshot) != 2 or not all(isinstance(t, torch.Tensor) for t in snapshot):
            raise ValueError("a voxel cache restores a snapshot it took: (points, features) tensors")
        self._points, self._features = snapshot

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Points (N, 3) and features (N, C), one per voxel, in the stored dtype."""
        return self._points, self._features

    def __len__(self) -> int:
        return self._points.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes stored: points and features."""
        return self._points.nbytes + self._features.nbytes

    @property
    def capacity_nbytes(self) -> int:
        return self.nbytes

    def clear(self) -> None:
        self._points = torch.zeros(0, 3, dtype=self.dtype)  # [N, 3] world frame, one point per voxel
        self._features = torch.zeros(0, 0, dtype=self.dtype)  # [N, C]


def _voxel_keys(voxels: torch.Tensor) -> torch.Tensor:
    """One int64 per voxel: three coordinates in [-2**15, 2**15) offset to 16-bit unsigned and packed."""
    shifted = voxels.long() + 2**15  # [N, 3] in [0, 2**16)
    return (shifted[:, 0] * 2**32) + (shifted[:, 1] * 2**16) + shifted[:, 2]
