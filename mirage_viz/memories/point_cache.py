"""A flat, append-only cache of world points with per-point features (the paper's cache: no merging)."""

from __future__ import annotations

import torch

__all__ = ["PointCache"]


class PointCache:
    """Points (N, 3) and features (N, C) in growable buffers (capacity doubles, like a vector).

    An append copies only the new points; :meth:`tensors` returns views without copying. :meth:`truncate`
    (an undo) only lowers the count: the next appends overwrite the spare rows. The buffers
    hold coordinate rows, (3, capacity) and (C, capacity), so the views are transposed: projecting
    rows runs several times faster than (N, 3) records on CPU. Everything is stored in ``dtype``
    (float16 halves the bytes); readers convert what they use.
    """

    append_only = True

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        if not dtype.is_floating_point:
            raise ValueError(f"PointCache stores floating-point values; got {dtype}")
        self.dtype = dtype
        self.clear()

    def append(self, points: torch.Tensor, features: torch.Tensor) -> None:
        """Add points (M, 3) with features (M, C); C must match what is stored."""
        if points.ndim != 2 or points.shape[1] != 3 or features.ndim != 2 or features.shape[0] != points.shape[0]:
            raise ValueError(f"expected points (M, 3) and features (M, C), got {tuple(points.shape)} and {tuple(features.shape)}")
        if self._count and features.shape[1] != self._features.shape[0]:
            raise ValueError(f"features have {features.shape[1]} channels but the cache holds {self._features.shape[0]}")
        if points.shape[0] == 0:
            return
        if self._count == 0 and features.shape[1] != self._features.shape[0]:
            self.clear()  # emptied by a truncate: the spare rows may hold another channel count
        needed = self._count + points.shape[0]
        if needed > self._points.shape[1]:
            capacity = max(needed, 2 * self._points.shape[1])
            self._points = _grow(self._points[:, : self._count], 3, capacity, self.dtype)
            self._features = _grow(self._features[:, : self._count], features.shape[1], capacity, self.dtype)
        self._points[:, self._count : needed] = points.T
        self._features[:, self._count : needed] = features.T
        self._count = needed

    def truncate(self, count: int) -> None:
        """Keep the first ``count`` points (an undo of the appends after them); copies nothing.

        Views handed out earlier keep their rows up to ``count``; rows after it are overwritten by later appends.
        """
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= self._count:
            raise ValueError(f"can truncate to a count in [0, {self._count}] (the points stored), got {count!r}")
        self._count = count

    def snapshot(self) -> int:
        """The point count: :meth:`restore` truncates back to it."""
        return self._count

    def restore(self, snapshot: object) -> None:
        """Back to the state of :meth:`snapshot` (a count not above the current one)."""
        self.truncate(snapshot)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Views of everything stored: points (N, 3) and features (N, C), in the stored dtype."""
        return self._points[:, : self._count].T, self._features[:, : self._count].T

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        """Bytes of the stored points and features (N rows; spare capacity not counted)."""
        return self._count * (3 + self._features.shape[0]) * self._points.element_size()

    @property
    def capacity_nbytes(self) -> int:
        """Bytes the buffers hold, spare capacity included (at most twice :attr:`nbytes` after growth)."""
        return self._points.nbytes + self._features.nbytes

    def clear(self) -> None:
        self._points = torch.zeros(3, 0, dtype=self.dtype)  # [3, capacity]
        self._features = torch.zeros(0, 0, dtype=self.dtype)  # [C, capacity]
        self._count = 0


def _grow(kept: torch.Tensor, rows: int, capacity: int, dtype: torch.dtype) -> torch.Tensor:
    """A (rows, capacity) buffer starting with ``kept`` (rows, n), or empty when n = 0."""
    buffer = torch.empty(rows, capacity, dtype=dtype)
    if kept.shape[1]:
        buffer[:, : kept.shape[1]] = kept
    return buffer
