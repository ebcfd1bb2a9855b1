"""A flat, append-only cache of world points with per-point features (the paper's cache: no merging)."""

from __future__ import annotations

import torch

__all__ = ["PointCache"]


class PointCache:
    """Chunks of (points (N, 3), features (N, C)) concatenated lazily on first use after a write."""

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        self.dtype = dtype
        self._chunks: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._joined: tuple[torch.Tensor, torch.Tensor] | None = None

    def append(self, points: torch.Tensor, features: torch.Tensor) -> None:
        self._chunks.append((points.to(self.dtype).contiguous(), features.to(self.dtype).contiguous()))
        self._joined = None

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All points (N, 3) and features (N, C), float32 for projection."""
        if self._joined is None:
            if not self._chunks:
                return torch.zeros(0, 3), torch.zeros(0, 0)
            points = torch.cat([p for p, _ in self._chunks]).float()
            features = torch.cat([f for _, f in self._chunks]).float()
            self._joined = (points, features)
        return self._joined

    def __len__(self) -> int:
        return sum(p.shape[0] for p, _ in self._chunks)

    @property
    def nbytes(self) -> int:
        """Bytes of the stored points and features (as stored, before any float32 view)."""
        return sum(p.nbytes + f.nbytes for p, f in self._chunks)

    def clear(self) -> None:
        self._chunks.clear()
        self._joined = None
